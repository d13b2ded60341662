"""Commits on DuckDB's row groups: an append-only load with the default ``batch_rows`` commits where a row
group ends, splitting the page that crosses it, and a retry resumes exactly whatever commit fell inside a
page (real DuckDB files)."""

from __future__ import annotations

import threading

import duckdb
import pytest

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.warehouse import (
    BADGES,
    DuckDBWriter,
    SqlWriter,
    TableName,
    batches,
    run_transfer,
)
from airflow_provider_credly.warehouse.checkpoint import CheckpointStore
from airflow_provider_credly.warehouse.pipeline import Groups
from airflow_provider_credly.warehouse.records import PageRecords, split_records
from airflow_provider_credly.warehouse.slices import Slice, SlicedPages
from airflow_provider_credly.warehouse.transfer import TransferRun

TABLE = TableName.parse("badges")


def _badge(i: int) -> dict:
    return {
        "id": f"id-{i:05d}",
        "state": "accepted",
        "updated_at": f"2025-01-{1 + i % 28:02d}T00:00:00.000Z",
        "recipient_email": f"e{i}@example.com",
        "user": {"first_name": "Łukasz", "last_name": "Nguyễn"},
        "badge_template": {"id": "t", "skills": ["S1", f"S{i}"]},
    }


def _cursor(items: list[dict], size: int = 10, prefix: str = "p", opened: list | None = None):
    """A forward cursor over ``items``: each page's URL is the previous page's next URL, and requesting a
    page's URL again gives the same page (as Credly's high-volume cursor)."""

    def open_pages(start: str | None):
        if opened is not None:
            opened.append(start)
        k = int(start.rsplit("/", 1)[1]) if start else 0
        for i in range(k, len(items), size):
            nxt = f"{prefix}/{i + size}" if i + size < len(items) else None
            yield Page(items[i : i + size], f"{prefix}/{i}", nxt, {})

    return open_pages


def _records(n: int, url: str = "u/0", next_url: str | None = "u/1") -> PageRecords:
    p = PageRecords.of_items([_badge(i) for i in range(n)])
    return PageRecords(p.json, p.keys, p.newest, url, next_url)


def _duckdb(tmp_path, name: str = "rg.duckdb", **kwargs) -> DuckDBWriter:
    return DuckDBWriter(duckdb.connect(str(tmp_path / name)), BADGES, TABLE, children=True, **kwargs)


def _content(writer: SqlWriter) -> list[tuple]:
    rows = writer.fetchall("SELECT id, state, recipient_email, CAST(raw AS TEXT) FROM badges ORDER BY id")
    skills = writer.fetchall("SELECT * FROM badges_skills ORDER BY 1, 2")
    return [*rows, *skills]


# -- the parts ------------------------------------------------------------------------------------------


def test_split_records_keeps_every_record_once_and_counts_the_page_with_its_last_part():
    page = _records(10)
    head, tail = split_records(page, 4)
    assert head.keys == page.keys[:4] and tail.keys == page.keys[4:]
    assert head.decode() + tail.decode() == page.decode()  # the bytes of each record, in order
    # the head resumes from the page itself, the tail carries the page's cursor
    assert (head.url, head.next_url, tail.url, tail.next_url) == ("u/0", "u/0", "u/0", "u/1")
    assert (head.partial, tail.partial) == (True, False)
    assert (head.counted_rows, tail.counted_rows) == (0, 10)
    assert head.newest == max(r["updated_at"] for r in page.decode()[:4])
    assert tail.newest == page.newest
    # split again: still one count of ten, on the last part
    middle, rest = split_records(tail, 3)
    assert (middle.counted_rows, rest.counted_rows, rest.split_rows) == (0, 10, 7)
    with pytest.raises(ValueError, match="cannot split"):
        split_records(page, 10)


def test_split_records_of_a_page_msgspec_cannot_read_and_of_a_refetched_page():
    text = b'[{"id":"a","updated_at":"2025-01-01","n":NaN},{"id":"b","updated_at":"2025-01-02","n":1}]'
    page = PageRecords(text, ("a", "b"), "2025-01-02", "u/0", "u/1", refetched=True)
    head, tail = split_records(page, 1)
    assert [r["id"] for r in head.decode()] == ["a"] and [r["id"] for r in tail.decode()] == ["b"]
    # either part of a refetched page may hold records an earlier attempt committed
    assert head.refetched and tail.refetched


def test_batches_end_where_each_group_ends_splitting_the_page_that_crosses_it():
    pages = [_records(10, f"u/{i}", f"u/{i + 1}") for i in range(10)]
    got = list(batches(iter(pages), max_rows=1000, groups=Groups(25, split_records)))
    assert [sum(len(p) for p in batch) for batch in got] == [25, 25, 25, 25]
    assert [k for batch in got for p in batch for k in p.keys] == [k for p in pages for k in p.keys]
    assert [batch[-1].partial for batch in got] == [True, False, True, False]
    assert sum(p.counted_rows for batch in got for p in batch) == 100
    # a group already 20 rows full ends after 5 more; max_rows still ends batches inside a group
    got = list(batches(iter(pages), max_rows=12, groups=Groups(25, split_records, filled=20)))
    assert [sum(len(p) for p in batch) for batch in got][:4] == [5, 15, 10, 20]
    # pages larger than a group are split as often as needed
    big = [_records(100, "v/0", None)]
    got = list(batches(iter(big), max_rows=1000, groups=Groups(30, split_records)))
    assert [sum(len(p) for p in batch) for batch in got] == [30, 30, 30, 10]
    with pytest.raises(ValueError, match="cannot be"):
        Groups(25, split_records, filled=25)


def test_group_commits_are_duckdbs_row_groups_at_its_default_checkpoint_threshold(tmp_path):
    writer = _duckdb(tmp_path)
    writer.ensure_tables()

    def threshold() -> str:
        return writer.fetchall("SELECT current_setting('checkpoint_threshold')")[0][0]

    assert writer.start_group_commits() is None  # not an append-only load: commits cost the same anywhere
    writer.prepare_load(append_only=True)
    assert threshold() == "256.0 MiB"  # raised for a load committed by batches
    assert writer.start_group_commits() == (122_880, 61_440)  # the load's first group: half of one
    # the commit of a part of a row group larger than the default checkpoints instead of writing the WAL
    assert threshold() == "16.0 MiB"
    writer.close()
    # a database attached with its own row group size
    conn = duckdb.connect()
    conn.execute(f"ATTACH '{tmp_path / 'small.duckdb'}' AS small (ROW_GROUP_SIZE 2048)")
    conn.execute("USE small")
    small = DuckDBWriter(conn, BADGES, TABLE)
    small.ensure_tables()
    small.prepare_load(append_only=True)
    assert small.start_group_commits() == (2048, 1024)
    small.close()
    # PostgreSQL and the portable writer: none
    assert SqlWriter(None, BADGES, TABLE).start_group_commits() is None


# -- the load -------------------------------------------------------------------------------------------


def _load(writer: SqlWriter, items: list[dict], **kwargs):
    """A first load of ``items`` through ``_cursor`` (each key once, as the high-volume cursor)."""
    opened = kwargs.pop("opened", None)
    return run_transfer(
        open_pages=_cursor(items, opened=opened),
        writer=writer,
        key="k",
        fingerprint="f",
        unique_keys=True,
        **kwargs,
    )


def test_a_first_load_commits_at_the_end_of_each_row_group_and_equals_a_load_by_batches(tmp_path):
    items = [_badge(i) for i in range(300)]
    writer = _duckdb(tmp_path, row_group_rows=64)
    commits: list[tuple[int, int, int, str | None]] = []

    def seen(cp):
        commits.append((writer.count(), cp.rows, cp.pages, cp.next_url))

    result = _load(writer, items, after_commit=seen)
    assert (result.rows, result.pages, writer.count()) == (300, 30, 300)
    # every commit but the last ends a row group of 64, inside a page of 10: the checkpoint counts the
    # whole pages and resumes from the page the commit fell in
    assert [c[0] for c in commits[:-1]] == [64, 128, 192, 256]
    assert [(c[1], c[2], c[3]) for c in commits[:-1]] == [
        (60, 6, "p/60"),
        (120, 12, "p/120"),
        (190, 19, "p/190"),
        (250, 25, "p/250"),
    ]
    # explicit batch_rows: a commit every 20 rows at page ends, no page split
    other = _duckdb(tmp_path, "batches.duckdb", row_group_rows=64)
    counts: list[int] = []
    _load(other, items, batch_rows=20, after_commit=lambda cp: counts.append(other.count()))
    assert counts == list(range(20, 301, 20))
    assert _content(writer) == _content(other)
    writer.close()
    other.close()


def test_the_first_commit_ends_half_a_duckdb_row_group_and_the_later_row_groups_stay_whole(tmp_path):
    """The database's own row groups (2,048 rows; a checkpoint threshold small enough that the first commit
    checkpoints, as 61,440 real badges do at DuckDB's default): commits at 1,024, then every 2,048 rows, and
    DuckDB's row groups are exactly those (the first commit's part of a group ends DuckDB's first group)."""
    conn = duckdb.connect(config={"checkpoint_threshold": "256KB"})
    conn.execute(f"ATTACH '{tmp_path / 'groups.duckdb'}' AS groups (ROW_GROUP_SIZE 2048)")
    conn.execute("USE groups")
    writer = DuckDBWriter(conn, BADGES, TABLE)
    commits: list[int] = []
    items = [_badge(i) for i in range(5_000)]
    result = _load(writer, items, after_commit=lambda cp: commits.append(writer.count()))
    assert (result.rows, writer.count()) == (5_000, 5_000)
    assert commits[:-1] == [1_024, 3_072] and commits[-1] == 5_000
    groups = writer.fetchall(
        "SELECT row_group_id, sum(count) FROM pragma_storage_info('badges') "
        "WHERE column_name = 'id' AND segment_type = 'VARCHAR' GROUP BY 1 ORDER BY 1"
    )
    assert [int(rows) for _, rows in groups] == [1_024, 2_048, 1_928]
    writer.close()


class _Killed(Exception):
    pass


@pytest.mark.parametrize("retry_group", [64, 50])
def test_a_retry_after_a_commit_inside_a_page_resumes_exactly(tmp_path, retry_group):
    """The first attempt commits 64 rows (page p/60 split after 4 records) and dies; the retry refetches
    p/60 and replaces the keys of its batch, also when it splits pages elsewhere (another group size)."""
    items = [_badge(i) for i in range(300)]
    writer = _duckdb(tmp_path, row_group_rows=64)

    def die(cp):
        raise _Killed

    with pytest.raises(_Killed):
        _load(writer, items, after_commit=die)
    assert writer.count() == 64  # 4 records of page p/60 committed ahead of the checkpoint
    saved = CheckpointStore(writer).load("k")
    assert saved is not None and (saved.rows, saved.pages, saved.next_url) == (60, 6, "p/60")
    writer.close()

    writer = _duckdb(tmp_path, row_group_rows=retry_group)
    opened: list[str | None] = []
    result = _load(writer, items, opened=opened)
    assert opened == ["p/60"] and result.resumed and writer.append_only
    assert (result.rows, result.pages, writer.count()) == (300, 30, 300)
    assert writer.fetchall("SELECT COUNT(DISTINCT id) FROM badges") == [(300,)]
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(600,)]
    fresh = _duckdb(tmp_path, "fresh.duckdb")
    run_transfer(open_pages=_cursor(items), writer=fresh, key="k", fingerprint="f", batch_rows=7)
    assert _content(writer) == _content(fresh)
    writer.close()
    fresh.close()


def test_a_sliced_load_commits_on_row_groups_and_resumes_every_slice_exactly(tmp_path):
    """Three slices of 95 badges read by two cursors; the first attempt dies after its second commit
    (each inside some slice's page); the retry reopens only the unfinished slices, each at its saved page."""
    slices = [
        Slice(0, None, "2024-01-31"),
        Slice(1, "2024-02-01", "2024-02-29"),
        Slice(2, "2024-03-01", None),
    ]
    data = {s.index: [_badge(s.index * 1000 + k) for k in range(95)] for s in slices}
    opened: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def source() -> SlicedPages:
        def open_slice(piece: Slice, start_url: str | None):
            with lock:
                opened.append((piece.index, start_url))
            return _cursor(data[piece.index], prefix=f"s{piece.index}")(start_url)

        return SlicedPages(lambda on_slice: slices, open_slice, 2)

    def run(after_commit=None):
        writer = _duckdb(tmp_path, row_group_rows=64)
        run = TransferRun(writer=writer, key="k", unique_keys=True, after_commit=after_commit)
        try:
            return writer, run.run_sliced(source(), '{"request": 1}')
        except BaseException:
            writer.close()
            raise

    commits: list[int] = []

    def die_on_second(cp):
        commits.append(cp.rows)
        if len(commits) == 2:
            raise _Killed

    with pytest.raises(_Killed):
        run(die_on_second)
    check = _duckdb(tmp_path, row_group_rows=64)
    committed = check.count()
    # two commits, each at the end of a row group (the first waits for the plan: it may come a group later)
    assert committed >= 128 and committed % 64 == 0, committed
    store = CheckpointStore(check)
    saved = {s.index: store.load(f"k/slice-{s.index}") for s in slices}
    check.close()
    # the pages the commits fell in count later
    assert sum(cp.rows for cp in saved.values() if cp) < committed
    opened.clear()
    writer, result = run()
    assert result.resumed and (result.rows, writer.count()) == (285, 285)
    assert writer.fetchall("SELECT COUNT(DISTINCT id) FROM badges") == [(285,)]
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(570,)]
    # each unfinished slice opened once, at its saved page (a slice not started: at its start); a finished
    # one not at all
    assert sorted(i for i, _ in opened) == sorted(
        i for i, cp in saved.items() if not cp or cp.status == "running"
    )
    assert all(start == (saved[i].next_url if saved[i] else None) for i, start in opened)
    assert any(start is not None for _, start in opened)  # at least one slice resumed mid-way
    writer.close()
