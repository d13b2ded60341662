"""The slice planner (pure, and over loopback HTTP to the emulator), the plan in the fingerprint, the
multi-cursor merger's bounds, and the emulator's exact ``total_count`` for created_at ranges."""

from __future__ import annotations

import bisect
import itertools
import random
import threading
from datetime import date, timedelta

import pytest

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.testing.emulator.util import MS_PER_DAY
from airflow_provider_credly.warehouse.pipeline import CursorMerger
from airflow_provider_credly.warehouse.slices import (
    Slice,
    plan_badge_partitions,
    plan_badge_slices,
    plan_slices,
    saved_slices,
    sliced_fingerprint,
)

FIRST = date(2023, 1, 1)
LAST = FIRST + timedelta(days=3 * 365 - 1)


def _counter(per_day: dict[date, int]):
    """``count(lo, hi)`` over a per-day histogram (prefix sums), counting its calls."""
    days = sorted(per_day)
    sums = list(itertools.accumulate(per_day[d] for d in days))
    calls = []

    def count(lo: date, hi: date) -> int:
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
    plan = plan_slices(count, FIRST, LAST, 1_000_000, target=1_000_000 // 16)
    _assert_covers(plan.slices, 1_000_000)
    sizes = [s.count for s in plan.slices]
    mean = sum(sizes) / len(sizes)
    assert max(sizes) <= 1.5 * mean, sizes
    assert max(sizes) <= 1_000_000 // 16
    assert plan.probes == len(calls)
    print(f"1M badges / 3 years: {len(sizes)} slices, {plan.probes} probes, max/mean {max(sizes) / mean:.2f}")
    assert plan.probes < 150  # reported in benchmarks/README.md


def test_the_same_counts_give_the_same_plan_whatever_the_probe_concurrency():
    hist = _history(200_000, seed=5)
    plans = [
        plan_slices(_counter(hist)[0], FIRST, LAST, 200_000, target=10_000, workers=w) for w in (1, 1, 8)
    ]
    assert plans[0] == plans[1] == plans[2]


def test_a_single_day_is_one_slice_however_big():
    heavy_day = FIRST + timedelta(days=400)
    hist = _history(100_000, heavy={heavy_day: 300_000})
    count, _ = _counter(hist)
    plan = plan_slices(count, FIRST, LAST, 400_000, target=25_000)
    _assert_covers(plan.slices, 400_000)
    big = [s for s in plan.slices if s.count > 25_000]
    assert len(big) == 1 and big[0].since == big[0].until == heavy_day.isoformat()
    assert big[0].count >= 300_000
    others = [s.count for s in plan.slices if s is not big[0]]
    assert max(others) <= 1.5 * (sum(others) / len(others))


def test_small_or_empty_searches_are_one_slice_with_the_given_bounds():
    count, calls = _counter({FIRST: 10})
    plan = plan_slices(count, FIRST, FIRST, 10, target=1_000, since="2022-01-01", until="2024-01-01")
    assert [(s.since, s.until, s.count) for s in plan.slices] == [("2022-01-01", "2024-01-01", 10)]
    assert plan.probes == 0 and not calls
    empty = plan_slices(count, FIRST, LAST, 0, target=10)
    assert [(s.since, s.until) for s in empty.slices] == [(None, None)]
    with pytest.raises(ValueError):
        plan_slices(count, FIRST, LAST, 10, target=0)


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

    broken = CursorMerger([source(3), source(2, fail=True)], workers=2, max_items=2)
    with pytest.raises(RuntimeError, match="cursor broke"):
        for _ in broken:
            pass
