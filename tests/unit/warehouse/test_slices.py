"""The slice planner (pure, and over loopback HTTP to the emulator), the plan in the fingerprint, the
multi-cursor merger's bounds and its open list of sources, and the emulator's exact ``total_count`` for
created_at ranges."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import random
import threading
import time
from datetime import date, timedelta

import duckdb
import pytest

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.testing.emulator.util import MS_PER_DAY
from airflow_provider_credly.warehouse import BADGES, CheckpointStore, DuckDBWriter, TableName, TransferRun
from airflow_provider_credly.warehouse.pipeline import CursorMerger
from airflow_provider_credly.warehouse.slices import (
    Slice,
    SlicedPages,
    plan_badge_partitions,
    plan_badge_slices,
    plan_slices,
    planning_fingerprint,
    saved_slices,
    sliced_fingerprint,
)

FIRST = date(2023, 1, 1)
LAST = FIRST + timedelta(days=3 * 365 - 1)


def _counter(per_day: dict[date, int], jitter: random.Random | None = None):
    """``count(lo, hi)`` over a per-day histogram (prefix sums), counting its calls (answering after a
    random delay when ``jitter`` is given, so concurrent probes come back in any order)."""
    days = sorted(per_day)
    sums = list(itertools.accumulate(per_day[d] for d in days))
    calls = []
    lock = threading.Lock()

    def count(lo: date, hi: date) -> int:
        if jitter is not None:
            with lock:
                delay = jitter.uniform(0, 0.01)
            time.sleep(delay)
        calls.append((lo, hi))
        i, j = bisect.bisect_left(days, lo), bisect.bisect_right(days, hi)
        return (sums[j - 1] if j else 0) - (sums[i - 1] if i else 0)

    return count, calls


def _history(total: int, seed: int = 1, heavy: dict[date, int] | None = None) -> dict[date, int]:
    """``total`` badges over three years with a growing, noisy daily volume."""
    rnd = random.Random(seed)
    weights = [(1 + i / 365) * rnd.uniform(0.5, 1.5) for i in range(3 * 365)]
    scale = total / sum(weights)
    out = {FIRST + timedelta(days=i): int(w * scale) for i, w in enumerate(weights)}
    out[LAST] += total - sum(out.values())
    for day, n in (heavy or {}).items():
        out[day] += n
    return out


def _assert_covers(slices: tuple[Slice, ...], total: int) -> None:
    assert [s.index for s in slices] == list(range(len(slices)))
    assert slices[0].since is None and slices[-1].until is None  # open ends: nothing outside is lost
    for a, b in itertools.pairwise(slices):  # contiguous and disjoint day ranges
        assert a.until is not None and b.since is not None
        assert date.fromisoformat(b.since) == date.fromisoformat(a.until) + timedelta(days=1)
    for s in slices:
        if s.since and s.until:
            assert s.since <= s.until
    assert sum(s.count for s in slices) == total


def test_one_million_badges_over_three_years_balanced_within_1_5x_of_the_mean():
    hist = _history(1_000_000)
    count, calls = _counter(hist)
    plan = plan_slices(count, FIRST, LAST, 1_000_000, slices=16, workers=16)
    _assert_covers(plan.slices, 1_000_000)
    sizes = [s.count for s in plan.slices]
    mean = sum(sizes) / len(sizes)
    assert len(sizes) == 16
    assert max(sizes) <= 1.5 * mean, sizes
    assert max(sizes) <= 1.1 * 1_000_000 / 16 + max(hist.values())  # within the tolerance (5% per boundary)
    assert plan.probes == len(calls)
    print(
        f"1M badges / 3 years: {len(sizes)} slices, {plan.probes} probes in {plan.rounds} rounds, "
        f"max/mean {max(sizes) / mean:.2f}"
    )
    assert plan.probes <= 2 * 15  # reported in benchmarks/README.md (15 boundaries)
    assert plan.rounds <= 4  # each round costs one round trip


@pytest.mark.parametrize("slices", [8, 32, 64])
def test_balanced_for_other_slice_counts_within_the_probe_budget(slices):
    hist = _history(1_000_000, seed=slices)
    count, calls = _counter(hist)
    plan = plan_slices(count, FIRST, LAST, 1_000_000, slices=slices, workers=8)
    _assert_covers(plan.slices, 1_000_000)
    sizes = [s.count for s in plan.slices]
    assert len(sizes) == slices and max(sizes) <= 1.5 * (sum(sizes) / len(sizes))
    assert plan.probes == len(calls) <= 4 * slices


def test_the_probe_budget_caps_the_plan_and_it_still_covers_everything():
    count, calls = _counter(_history(1_000_000))
    plan = plan_slices(count, FIRST, LAST, 1_000_000, slices=32, max_probes=10)
    assert plan.probes == len(calls) <= 10
    _assert_covers(plan.slices, 1_000_000)
    assert 2 <= len(plan.slices) <= 32


def test_the_same_counts_give_the_same_plan_whatever_the_probe_concurrency_and_order():
    hist = _history(200_000, seed=5)
    plans = [plan_slices(_counter(hist)[0], FIRST, LAST, 200_000, slices=20, workers=1) for _ in range(2)]
    for seed in range(3):  # answers in a random order, handed out as they come
        handed: list[Slice] = []
        count, _ = _counter(hist, jitter=random.Random(seed))
        plans.append(plan_slices(count, FIRST, LAST, 200_000, slices=20, workers=8, on_slice=handed.append))
        assert tuple(handed) == plans[-1].slices  # every slice handed over once, in order
    assert all(plan == plans[0] for plan in plans)


def test_slices_are_handed_over_before_the_plan_is_complete():
    count, calls = _counter(_history(1_000_000, seed=2))
    seen_at: list[int] = []  # probes answered when each slice was handed over (one probe at a time)
    plan = plan_slices(
        count, FIRST, LAST, 1_000_000, slices=16, on_slice=lambda s: seen_at.append(len(calls))
    )
    assert len(seen_at) == len(plan.slices)
    assert seen_at[0] < plan.probes  # the first cursor can start while later boundaries are probed
    assert seen_at == sorted(seen_at)


def test_a_single_day_is_one_slice_however_big():
    heavy_day = FIRST + timedelta(days=400)
    hist = _history(100_000, heavy={heavy_day: 300_000})
    count, _ = _counter(hist)
    plan = plan_slices(count, FIRST, LAST, 400_000, slices=16)
    _assert_covers(plan.slices, 400_000)
    big = [s for s in plan.slices if s.count > 25_000 * 1.1 + max(hist[d] for d in hist if d != heavy_day)]
    assert len(big) == 1 and big[0].since == big[0].until == heavy_day.isoformat()
    assert big[0].count >= 300_000
    others = [s.count for s in plan.slices if s is not big[0]]
    assert max(others) <= 1.5 * 25_000  # the rest is still cut at its share of the total


def test_small_or_empty_searches_are_one_slice_with_the_given_bounds():
    count, calls = _counter({FIRST: 10})
    plan = plan_slices(count, FIRST, FIRST, 10, slices=8, since="2022-01-01", until="2024-01-01")
    assert [(s.since, s.until, s.count) for s in plan.slices] == [("2022-01-01", "2024-01-01", 10)]
    assert plan.probes == 0 and not calls
    empty = plan_slices(count, FIRST, LAST, 0, slices=8)
    assert [(s.since, s.until) for s in empty.slices] == [(None, None)]
    few = plan_slices(_counter({FIRST: 1, LAST: 2})[0], FIRST, LAST, 3, slices=8)
    _assert_covers(few.slices, 3)
    assert len(few.slices) <= 3  # never more slices than badges
    with pytest.raises(ValueError):
        plan_slices(count, FIRST, LAST, 10, slices=0)


def test_the_plan_is_part_of_the_fingerprint_and_comes_back_from_it():
    plan = [Slice(0, None, "2024-01-31"), Slice(1, "2024-02-01", None)]
    fingerprint = sliced_fingerprint('{"filter": ""}', plan)
    assert fingerprint != sliced_fingerprint('{"filter": ""}', plan[:1])
    again = saved_slices(fingerprint, '{"filter": ""}')
    assert [(s.index, s.since, s.until) for s in again or []] == [
        (0, None, "2024-01-31"),
        (1, "2024-02-01", None),
    ]
    assert saved_slices(fingerprint, '{"filter": "state::accepted"}') is None  # another request: plan again
    assert saved_slices('{"filter": ""}', '{"filter": ""}') is None  # a single-cursor load has no plan
    assert saved_slices(None, '{"filter": ""}') is None
    # a load saved before its plan was complete has none to resume: a retry plans again
    assert saved_slices(planning_fingerprint('{"filter": ""}'), '{"filter": ""}') is None


def test_slice_filters_keep_the_request_bounds_at_open_ends():
    base = {"state": "accepted", "created_at_min": "2020-01-01"}
    assert Slice(0, None, "2024-01-31").filters(base) == {**base, "created_at_max": "2024-01-31"}
    assert Slice(1, "2024-02-01", None).filters(base) == {**base, "created_at_min": "2024-02-01"}


def _client(emulator) -> CredlyClient:
    return CredlyClient.create(emulator.token, emulator.org_id, base_url=emulator.base_url)


def test_emulator_total_count_is_exact_for_created_at_ranges(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=3_000, span_days=400)
    store = emulator.state.store
    rnd = random.Random(3)
    first_day = min(store.created) // MS_PER_DAY
    for _ in range(25):
        lo = first_day + rnd.randrange(0, 400)
        hi = lo + rnd.randrange(0, 60)
        text = (
            f"created_at_min::{date.fromordinal(719163 + lo)}|created_at_max::{date.fromordinal(719163 + hi)}"
        )
        rows, total = emulator.state.list_badges(text, None, 1, 50)
        want = [r for r in store.order if lo * MS_PER_DAY <= store.created[r] < (hi + 1) * MS_PER_DAY]
        assert total == len(want)
        assert rows == sorted(want, key=store.key, reverse=True)[:50]  # default sort -created_at
        # the high-volume cursor lists the same badges
        walked = [
            b["id"]
            for p in _client(emulator).iter_high_volume_badge_pages(text, badge_format="minimal")
            for b in p.items
        ]
        assert walked == [store.ids[r] for r in want]


def test_partitions_over_loopback_http_cover_every_badge_once(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=2_400, hv_page_size=200)
    client = _client(emulator)
    parts = plan_badge_partitions(client, partitions=4)
    assert 3 <= len(parts) <= 6
    assert parts[0]["since"] is None and parts[-1]["until"] is None
    seen: list[str] = []
    sizes = []
    for part in parts:
        flt = {k: v for k, v in (("created_at_min", part["since"]), ("created_at_max", part["until"])) if v}
        ids = [
            b["id"] for p in client.iter_high_volume_badge_pages(flt, badge_format="minimal") for b in p.items
        ]
        seen += ids
        sizes.append(len(ids))
    assert len(seen) == len(set(seen)) == emulator.state.badges_count()
    assert max(sizes) <= 1.5 * (sum(sizes) / len(sizes))
    bounded = plan_badge_partitions(client, since="2025-01-01", until="2025-06-30", partitions=2)
    assert bounded[0]["since"] == "2025-01-01" and bounded[-1]["until"] == "2025-06-30"
    plan = plan_badge_slices(client, slices=4, min_badges=1)
    assert plan.total == emulator.state.badges_count() and plan.probes >= 3


class CountingLimiter:
    """An ``AdaptiveLimiter`` stand-in counting the slots taken and the most held at once."""

    def __init__(self) -> None:
        self.taken = self.held = self.peak = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self):
        with self._lock:
            self.taken += 1
            self.held += 1
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1


def test_badge_slices_respect_the_page_size_and_take_a_limiter_slot_per_probe(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=2_400, hv_page_size=200)
    client = _client(emulator)
    limiter = CountingLimiter()
    handed: list[Slice] = []
    plan = plan_badge_slices(
        client, slices=8, min_badges=1, min_pages=4, workers=8, limiter=limiter, on_slice=handed.append
    )
    assert len(plan.slices) == 2_400 // (4 * 200)  # slices of at least 4 pages of 200
    assert tuple(handed) == plan.slices
    assert limiter.taken == plan.probes  # the range probes, the page-size probe and the count probes
    assert limiter.peak > 1  # the probes of a round went at once
    # without the page-size rule the same search makes the slices asked for
    assert len(plan_badge_slices(client, slices=8, min_badges=1).slices) == 8


def test_cursor_merger_bounds_the_pages_in_memory_in_total_and_raises_errors():
    held = 0
    peak = 0
    lock = threading.Lock()

    def source(n: int, fail: bool = False):
        def pages():
            nonlocal held, peak
            for i in range(n):
                with lock:
                    held += 1
                    peak = max(peak, held)
                yield [i]
            if fail:
                raise RuntimeError("cursor broke")

        return pages

    merger = CursorMerger([source(30) for _ in range(8)], workers=8, max_items=5)
    got = []
    for tagged in merger:
        with lock:
            held -= 1
        got.append((tagged.source, tagged.item[0]))
    assert sorted(got) == [(s, i) for s in range(8) for i in range(30)]
    for s in range(8):  # each source's items keep their order
        assert [i for src, i in got if src == s] == list(range(30))
    assert peak <= 5 + 1  # the budget (an item is counted before the worker hands it over)

    held = peak = 0
    bounded = CursorMerger([source(30) for _ in range(8)], workers=8, max_items=8, max_records=3)
    for _ in bounded:  # items of one record: at most 3 held (an item is counted before it is handed over)
        with lock:
            held -= 1
        time.sleep(0.001)  # a slow consumer: the workers would run ahead
    assert 1 <= peak <= 3 + 1

    broken = CursorMerger([source(3), source(2, fail=True)], workers=2, max_items=2)
    with pytest.raises(RuntimeError, match="cursor broke"):
        for _ in broken:
            pass


def test_cursor_merger_reads_sources_added_while_it_runs_and_raises_the_adders_error():
    def source(n: int):
        return lambda: iter([[i] for i in range(n)])

    merger = CursorMerger([], workers=3, max_items=4, more=True)

    def feed() -> None:
        for _ in range(5):
            time.sleep(0.01)
            merger.add(source(4))
        merger.no_more_sources()

    threading.Thread(target=feed).start()
    got = [(tagged.source, tagged.item[0]) for tagged in merger]
    assert sorted(got) == [(s, i) for s in range(5) for i in range(4)]

    failing = CursorMerger([source(2)], workers=2, max_items=2, more=True)
    threading.Timer(0.05, failing.fail, args=(ValueError("planning broke"),)).start()
    with pytest.raises(ValueError, match="planning broke"):
        for _ in failing:
            pass
    assert not failing.add(source(1))  # a stopped merger takes no more sources


def _sliced_source(items_per_slice: int, plan_fn, page: int = 10):
    """A :class:`SlicedPages` over in-memory slices (slice ``i`` holds ids ``i * 1000 + k``), recording
    which slices opened a cursor."""
    opened: list[int] = []
    first_page = threading.Event()

    def open_slice(piece: Slice, start_url: str | None):
        opened.append(piece.index)
        items = [
            {"id": f"id-{piece.index * 1000 + k}", "updated_at": "2025-01-01"} for k in range(items_per_slice)
        ]
        start = int(start_url) if start_url else 0
        for i in range(start, len(items), page):
            nxt = str(i + page) if i + page < len(items) else None
            first_page.set()
            yield Page(items[i : i + page], f"s{piece.index}/{i}", nxt, {})

    return SlicedPages(plan_fn, open_slice, 2), opened, first_page


def _run(tmp_path, source, **kwargs):
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "s.duckdb")), BADGES, TableName.parse("badges"))
    run = TransferRun(writer=writer, key="k", batch_rows=20, unique_keys=True, **kwargs)
    return writer, run.run_sliced(source, '{"request": 1}')


def test_a_sliced_load_fetches_slices_before_the_plan_is_complete_and_saves_the_plan(tmp_path):
    def plan(on_slice):
        on_slice(Slice(0, None, "2024-01-31"))
        on_slice(Slice(1, "2024-02-01", "2024-02-29"))
        assert started.wait(10), "no page was fetched while planning"
        time.sleep(0.05)  # batches are written meanwhile; their commit waits for the plan
        return [
            Slice(0, None, "2024-01-31"),
            Slice(1, "2024-02-01", "2024-02-29"),
            Slice(2, "2024-03-01", None),
        ]

    source, opened, started = _sliced_source(45, plan)
    seen: list[str] = []
    writer, result = _run(tmp_path, source, after_commit=lambda cp: seen.append(cp.fingerprint))
    assert result.rows == 135 and result.slices == 3 and sorted(opened) == [0, 1, 2]
    assert writer.fetchall("SELECT COUNT(DISTINCT id) FROM badges") == [(135,)]
    # every commit, the first one included, saved the complete plan: a retry would continue these slices
    assert seen and all(saved_slices(f, '{"request": 1}') is not None for f in seen)
    assert [(s.since, s.until) for s in saved_slices(seen[0], '{"request": 1}') or []] == [
        (None, "2024-01-31"),
        ("2024-02-01", "2024-02-29"),
        ("2024-03-01", None),
    ]
    writer.close()


def test_a_planning_error_fails_the_load_and_leaves_nothing_to_resume(tmp_path):
    def plan(on_slice):
        on_slice(Slice(0, None, "2024-01-31"))
        assert started.wait(10)
        raise RuntimeError("probe failed")

    source, _, started = _sliced_source(45, plan)
    with pytest.raises(RuntimeError, match="probe failed"):
        _run(tmp_path, source)
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "s.duckdb")), BADGES, TableName.parse("badges"))
    assert writer.fetchall("SELECT COUNT(*) FROM badges") == [(0,)]  # no batch committed without its plan
    saved = CheckpointStore(writer).load("k")
    assert saved is not None and not saved.resumable
    assert saved_slices(saved.fingerprint, '{"request": 1}') is None
    writer.close()


def test_a_plan_that_returns_after_its_slices_were_read_still_finishes_the_load(tmp_path):
    slices = [Slice(0, None, "2024-01-31"), Slice(1, "2024-02-01", None)]

    def plan(on_slice):
        for piece in slices:
            on_slice(piece)
        time.sleep(0.5)  # every page is written meanwhile: the last batch sees an unfinished plan
        return slices

    source, opened, _ = _sliced_source(20, plan)  # whole batches of 20 rows: the last one is not held back
    writer, result = _run(tmp_path, source)
    assert result.rows == 40 and result.slices == 2 and sorted(opened) == [0, 1]
    saved = CheckpointStore(writer).load("k")
    assert saved is not None and saved.status == "done"
    writer.close()


@pytest.mark.parametrize(("batch_rows", "most"), [(None, 6), (4_000, 2)])
def test_every_cursor_keeps_a_request_out_unless_batch_rows_bounds_their_records(tmp_path, batch_rows, most):
    """Six cursors over pages of 2,000 records: by default each keeps its request out (six in flight, though
    six pages are more than the default batch of 10,000 records); an explicit ``batch_rows`` of 4,000 also
    bounds the records in flight, so at most two pages are."""
    slices = [Slice(i, f"2024-0{i + 1}-01", f"2024-0{i + 1}-28") for i in range(6)]
    lock = threading.Condition()
    state = {"in_flight": 0, "peak": 0}

    def open_slice(piece: Slice, start_url: str | None):
        for page in range(2):
            with lock:  # a request: wait (briefly) for the others, so the peak is what the bounds allow
                state["in_flight"] += 1
                state["peak"] = max(state["peak"], state["in_flight"])
                lock.notify_all()
                lock.wait_for(lambda: state["in_flight"] >= 6, timeout=0.2)
                state["in_flight"] -= 1
            first = piece.index * 10_000 + page * 2_000
            items = [
                {"id": f"b{n}", "updated_at": "2024-01-01T00:00:00Z"} for n in range(first, first + 2_000)
            ]
            yield Page(
                items, f"s{piece.index}/{page}", f"s{piece.index}/{page + 1}" if page == 0 else None, {}
            )

    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "f.duckdb")), BADGES, TableName.parse("badges"))
    run = TransferRun(writer=writer, key="k", unique_keys=True, batch_rows=batch_rows)
    result = run.run_sliced(SlicedPages(lambda on_slice: slices, open_slice, 6), '{"request": 1}')
    assert result.rows == writer.count() == 24_000
    assert state["peak"] == most
    writer.close()
