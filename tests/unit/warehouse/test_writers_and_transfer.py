"""Writers on real databases (DuckDB file, SQLite, PostgreSQL when reachable) and the transfer loop:
upsert idempotence, prune, resume after a failure at any point, bounded pipeline."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import datetime

import duckdb
import msgspec
import pytest

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.warehouse import (
    BADGES,
    CheckpointStore,
    DuckDBWriter,
    PagePipeline,
    PostgresWriter,
    SqlWriter,
    TableName,
    batches,
    run_transfer,
)
from airflow_provider_credly.warehouse.records import page_records
from airflow_provider_credly.warehouse.transfer import IncompleteLoadError, TransferRun
from airflow_provider_credly.warehouse.writers import LoadMeta, dedupe_by_key

TABLE = TableName.parse("badges")


def _badge(i, state="accepted", **extra):
    return {
        "id": f"id-{i:05d}",
        "state": state,
        "recipient_email": f"e{i}@example.com",
        "public": i % 2 == 0,
        "issued_at": "2025-01-02T03:04:05.000Z",
        "updated_at": f"2025-01-{1 + i % 28:02d}T00:00:00.000Z",
        "badge_template": {"id": "t", "name": "T", "skills": ["S1", f"S{i}"]},
        "user": {"id": f"u{i}"},
        "note": 'back\\slash "quoted" tab\t newline\n',
        **extra,
    }


def _pages(items, size=10):
    def open_pages(start):
        k = int(start) if start else 0
        for i in range(k, len(items), size):
            nxt = str(i + size) if i + size < len(items) else None
            yield Page(items[i : i + size], f"u{i}", nxt, {})

    return open_pages


def _postgres_writer(request, children, **kwargs):
    import uuid

    import psycopg

    from tests.conftest import POSTGRES_DSN

    request.getfixturevalue("postgres_available")
    schema = f"w_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f"create schema {schema}")
    writer = PostgresWriter(
        psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}"),
        BADGES,
        TABLE,
        children=children,
        **kwargs,
    )

    def cleanup():
        writer.close()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            admin.execute(f"drop schema {schema} cascade")

    return writer, cleanup


@pytest.fixture(params=["duckdb", "sqlite", "postgres"])
def make_writer(request, tmp_path):
    cleanups = []

    def make(children=False):
        if request.param == "duckdb":
            writer = DuckDBWriter(
                duckdb.connect(str(tmp_path / "w.duckdb")), BADGES, TABLE, children=children
            )
            cleanups.append(writer.close)
        elif request.param == "sqlite":
            conn = sqlite3.connect(str(tmp_path / "w.sqlite"))
            writer = SqlWriter(conn, BADGES, TABLE, placeholder="?", children=children)
            cleanups.append(writer.close)
        else:
            writer, cleanup = _postgres_writer(request, children)
            cleanups.append(cleanup)
        return writer

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


def _content(writer):
    return sorted(writer.fetchall("SELECT id, state, recipient_email, public, CAST(raw AS TEXT) FROM badges"))


def test_upsert_is_idempotent_and_updates(make_writer):
    writer = make_writer(children=True)
    writer.ensure_tables()
    items = [_badge(i) for i in range(30)]
    assert writer.upsert(items, LoadMeta.new("l1")) == 30
    writer.commit()
    first = _content(writer)
    assert writer.upsert(items, LoadMeta.new("l1")) == 30  # same rows again: no duplicates
    writer.commit()
    assert _content(writer) == first
    assert writer.count() == 30
    changed = [
        _badge(3, state="revoked"),
        _badge(3, state="revoked", revocation_reason="late"),
    ]  # dup in batch
    writer.upsert(changed, LoadMeta.new("l2"))
    writer.commit()
    rows = {r[0]: r for r in _content(writer)}
    assert rows["id-00003"][1] == "revoked"
    assert '"late"' in rows["id-00003"][4]
    assert writer.count() == 30
    skills = writer.fetchall(
        "SELECT badge_id, position, skill FROM badges_skills WHERE badge_id = 'id-00003'"
    )
    assert sorted(skills) == [("id-00003", 0, "S1"), ("id-00003", 1, "S3")]


def _raw_page(items, url, pretty=False):
    text = json.dumps(items, indent="\t" if pretty else None, ensure_ascii=pretty)
    return page_records(Page(None, url, None, {}, records_json=text.encode()))


def test_write_takes_page_texts_as_the_server_sent_them(make_writer):
    writer = make_writer(children=True)
    writer.ensure_tables()
    weird = {"note": 'é \\ "q" \t\n end', "nested": {"a": [1, 2.5, None, True]}}
    nul = {"note": "NUL\u0000 here"}
    first = [_badge(i, **weird) for i in range(5)]
    second = [_badge(7, **nul), _badge(8, **weird)]
    # a pretty-printed page (line breaks and tabs between tokens, \\u escapes) and a compact one, sent as is
    written = writer.write([_raw_page(first, "p1", pretty=True), _raw_page(second, "p2")], LoadMeta.new("l"))
    writer.commit()
    assert written == 7
    rows = {r[0]: r for r in _content(writer)}
    assert sorted(rows) == [f"id-{i:05d}" for i in (0, 1, 2, 3, 4, 7, 8)]
    raw = json.loads(rows["id-00004"][4])
    assert raw["nested"] == {"a": [1, 2.5, None, True]}
    assert raw["note"] == weird["note"]
    assert raw["recipient_email"] == "e4@example.com"
    expected_nul = nul["note"] if writer.dialect != "postgres" else nul["note"].replace("\x00", "")
    assert json.loads(rows["id-00007"][4])["note"] == expected_nul  # jsonb cannot hold NUL: dropped there
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(14,)]


def test_write_keeps_the_last_record_of_a_key_repeated_across_pages(make_writer):
    writer = make_writer(children=True)
    writer.ensure_tables()
    first = [_badge(i) for i in range(5)]
    second = [_badge(2, state="revoked", revocation_reason="late"), _badge(7)]
    written = writer.write([_raw_page(first, "p1", pretty=True), _raw_page(second, "p2")], LoadMeta.new("l"))
    writer.commit()
    assert written == 6
    rows = {r[0]: r for r in _content(writer)}
    assert sorted(rows) == [f"id-{i:05d}" for i in (0, 1, 2, 3, 4, 7)]
    assert rows["id-00002"][1] == "revoked"
    assert json.loads(rows["id-00002"][4])["revocation_reason"] == "late"
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(12,)]


def test_replace_keys_replaces_the_rows_of_one_batch_in_an_append_only_load(make_writer):
    """A retried append-only load rewrites the batch of a reopened cursor's first page (its head may be
    committed already): ``replace_keys=True`` deletes those keys first, in the table and its child tables."""
    writer = make_writer(children=True)
    writer.ensure_tables()
    writer.prepare_load(append_only=True)
    assert writer.write([_raw_page([_badge(i) for i in range(3)], "p1")], LoadMeta.new("l")) == 3
    writer.commit()
    again = [_badge(2, state="revoked"), _badge(3)]
    assert writer.write([_raw_page(again, "p2")], LoadMeta.new("l"), replace_keys=True) == 2
    writer.commit()
    rows = {r[0]: r for r in _content(writer)}
    assert sorted(rows) == [f"id-{i:05d}" for i in range(4)]
    assert rows["id-00002"][1] == "revoked"
    assert writer.fetchall("SELECT COUNT(*) FROM badges") == [(4,)]
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(8,)]
    assert writer.append_only  # one batch's choice, not the load's


@pytest.mark.parametrize("append_only", [True, False])
def test_postgres_writes_values_of_another_json_type_as_text_in_the_table_column_order(request, append_only):
    # a clean page takes the typed decode (values in the decoder's order), a page with values of another
    # JSON type the general path (converted in Python): both in one COPY, so each lands in its own column
    writer, cleanup = _postgres_writer(request, children=False)
    try:
        writer.ensure_tables()
        writer.prepare_load(append_only=append_only)
        odd = _badge(
            9,
            state=3,
            public="true",
            issuer_earner_id={"a": 1},
            badge_template="not an object",
            user=None,
            issued_to_middle_name=False,
        )
        clean = [_badge(i, issued_to=f"to{i}", locale="en") for i in range(3)]
        assert writer.write([_raw_page(clean, "p1"), _raw_page([odd], "p2")], LoadMeta.new("l")) == 4
        writer.commit()
        names = [c.name for c in BADGES.columns if c.path]
        rows = {
            r[0]: dict(zip(names, r, strict=True))
            for r in writer.fetchall(f"SELECT {', '.join(names)} FROM badges")
        }
        got = rows["id-00001"]
        assert (got["state"], got["recipient_email"], got["issued_to"], got["locale"]) == (
            "accepted",
            "e1@example.com",
            "to1",
            "en",
        )
        assert (got["badge_template_id"], got["badge_template_name"], got["user_id"]) == ("t", "T", "u1")
        assert got["public"] is False and got["issued_at"].isoformat() == "2025-01-02T03:04:05+00:00"
        assert got["updated_at"].isoformat() == "2025-01-02T00:00:00+00:00"
        assert got["expires_at"] is None and got["revocation_reason"] is None
        weird = rows["id-00009"]
        assert (weird["state"], weird["public"], weird["issuer_earner_id"]) == ("3", True, '{"a":1}')
        assert (weird["badge_template_id"], weird["user_id"], weird["issued_to_middle_name"]) == (
            None,
            None,
            "false",
        )
        assert weird["recipient_email"] == "e9@example.com"
    finally:
        cleanup()


def test_duckdb_compresses_the_raw_column_with_zstd(tmp_path):
    conn = duckdb.connect(str(tmp_path / "z.duckdb"))
    writer = DuckDBWriter(conn, BADGES, TABLE)
    writer.ensure_tables()
    writer.upsert([_badge(i) for i in range(2_000)], LoadMeta.new("l"))
    writer.commit()
    conn.execute("COMMIT")
    conn.execute("CHECKPOINT")
    conn.execute("BEGIN TRANSACTION")
    storage = writer.fetchall(
        "SELECT DISTINCT compression FROM pragma_storage_info('badges') "
        "WHERE column_name = 'raw' AND segment_type = 'JSON'"
    )
    assert storage == [("ZSTD",)]
    writer.close()


def _threshold(conn):
    return conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]


@pytest.mark.parametrize("append_only", [True, False])
def test_duckdb_writer_raises_the_checkpoint_threshold_for_a_load_and_restores_it(tmp_path, append_only):
    path = str(tmp_path / "t.duckdb")
    other = duckdb.connect(path)  # same database instance: sees the instance-wide setting
    writer = DuckDBWriter(duckdb.connect(path), BADGES, TABLE)
    assert (writer.tuned_checkpoints, _threshold(other)) == (False, "16.0 MiB")
    writer.prepare_load(append_only=append_only)
    assert (writer.tuned_checkpoints, _threshold(other)) == (True, "256.0 MiB")
    writer.close()
    assert _threshold(other) == "16.0 MiB"
    other.close()

    configured = duckdb.connect(str(tmp_path / "c.duckdb"), config={"checkpoint_threshold": "64MiB"})
    writer = DuckDBWriter(configured, BADGES, TABLE)
    writer.prepare_load(append_only=False)
    assert not writer.tuned_checkpoints
    assert _threshold(configured) == "64.0 MiB"  # the connection's own setting is kept
    writer.close()

    untouched = DuckDBWriter(
        duckdb.connect(str(tmp_path / "u.duckdb")), BADGES, TABLE, checkpoint_threshold=None
    )
    untouched.prepare_load(append_only=False)
    assert (untouched.tuned_checkpoints, _threshold(untouched.conn)) == (False, "16.0 MiB")
    untouched.close()
    with pytest.raises(ValueError, match="must be a size"):
        DuckDBWriter(
            duckdb.connect(str(tmp_path / "v.duckdb")), BADGES, TABLE, checkpoint_threshold="1; DROP"
        )


@pytest.mark.parametrize("batch_rows", [None, 20])
def test_a_first_load_and_a_reload_through_run_transfer_tune_checkpoints(tmp_path, batch_rows):
    """A reload, and a first load committed by batches, raise DuckDB's checkpoint threshold; a first load
    committed on row groups (the default ``batch_rows``) keeps DuckDB's default."""
    items = [_badge(i) for i in range(30)]
    seen = []
    for key in ("first", "reload"):
        writer = DuckDBWriter(duckdb.connect(str(tmp_path / "r.duckdb")), BADGES, TABLE)
        run_transfer(
            open_pages=_pages(items),
            writer=writer,
            key=key,
            fingerprint="f",
            unique_keys=True,
            batch_rows=batch_rows,
            after_commit=lambda cp, w=writer: seen.append((w.append_only, _threshold(w.conn))),
        )
        assert writer.count() == 30
        writer.close()
    assert seen[0] == (True, "256.0 MiB" if batch_rows else "16.0 MiB")
    assert seen[-1] == (False, "256.0 MiB")


def test_prune_deletes_rows_not_in_the_load(make_writer):
    writer = make_writer(children=True)
    writer.ensure_tables()
    writer.upsert([_badge(i) for i in range(10)], LoadMeta.new("old"))
    writer.upsert([_badge(i) for i in range(5)], LoadMeta.new("new"))
    assert writer.prune("new") == 5
    writer.commit()
    assert writer.count() == 5
    assert writer.fetchall("SELECT COUNT(DISTINCT badge_id) FROM badges_skills") == [(5,)]


def test_rollback_discards_the_batch_and_its_checkpoint(make_writer):
    writer = make_writer()
    store = CheckpointStore(writer)
    writer.ensure_tables([store.ddl()])
    cp = store.new("k", "f", "l")
    writer.upsert([_badge(1)], LoadMeta.new("l"))
    store.save(cp.advance(next_url="next", pages=1, rows=1, max_updated_at=None))
    writer.rollback()
    assert writer.count() == 0
    assert store.load("k") is None


class _Boom(Exception):
    pass


def test_transfer_resumes_exactly_after_a_failure(make_writer):
    items = [_badge(i) for i in range(95)]
    writer = make_writer()
    seen_urls = []

    def opener(start):
        seen_urls.append(start)
        return _pages(items)(start)

    def die_after_batch_3(cp):
        if cp.pages >= 6:
            raise _Boom()

    with pytest.raises(_Boom):
        run_transfer(
            open_pages=opener,
            writer=writer,
            key="k",
            fingerprint="f",
            batch_rows=20,
            after_commit=die_after_batch_3,
        )
    assert writer.count() == 60  # three committed batches of two pages
    result = run_transfer(
        open_pages=opener, writer=writer, key="k", fingerprint="f", batch_rows=20, prune=True
    )
    assert seen_urls == [None, "60"]
    assert result.resumed is True
    assert result.resumed_at_page == 6
    assert (result.rows, result.pages, result.pruned) == (95, 10, 0)
    assert writer.count() == 95
    assert writer.fetchall("SELECT COUNT(DISTINCT _load_id) FROM badges") == [(1,)]
    # a finished load is not resumed: the next run starts over with a new load id
    again = run_transfer(open_pages=opener, writer=writer, key="k", fingerprint="f", batch_rows=20)
    assert again.resumed is False
    assert seen_urls[-1] is None


def test_a_source_that_stops_before_its_cursor_ends_never_finishes_the_load(make_writer):
    items = [_badge(i) for i in range(50)]
    writer = make_writer()

    def stops_early(start):
        for page in _pages(items)(start):
            if page.url == "u30":  # the source ends although page u20 named a next page
                return
            yield page

    with pytest.raises(IncompleteLoadError, match="resumable after page 3"):
        run_transfer(open_pages=stops_early, writer=writer, key="k", fingerprint="f", batch_rows=20)
    cp = CheckpointStore(writer).load("k")
    assert (cp.status, cp.pages, cp.next_url, writer.count()) == ("running", 3, "30", 30)
    result = run_transfer(open_pages=_pages(items), writer=writer, key="k", fingerprint="f", batch_rows=20)
    assert (result.resumed, result.rows, writer.count()) == (True, 50, 50)


def test_transfer_does_not_resume_another_request(tmp_path):
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "x.duckdb")), BADGES, TABLE)
    items = [_badge(i) for i in range(40)]

    def die(cp):
        raise _Boom()

    with pytest.raises(_Boom):
        run_transfer(
            open_pages=_pages(items), writer=writer, key="k", fingerprint="A", batch_rows=10, after_commit=die
        )
    result = run_transfer(open_pages=_pages(items), writer=writer, key="k", fingerprint="B", batch_rows=10)
    assert result.resumed is False
    assert result.rows == 40
    writer.close()


def test_write_failure_mid_batch_rolls_back(tmp_path):
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "y.duckdb")), BADGES, TABLE)
    items = [_badge(i) for i in range(30)]
    items[25] = {"state": "no id"}
    with pytest.raises(ValueError, match="no 'id'"):
        run_transfer(open_pages=_pages(items), writer=writer, key="k", fingerprint="f", batch_rows=10)
    assert writer.count() == 20  # the failing batch left nothing behind
    cp = CheckpointStore(writer).load("k")
    assert (cp.pages, cp.next_url) == (2, "20")
    writer.close()


def test_pipeline_is_bounded_and_overlaps_fetching():
    produced = []

    def slow_pages():
        for i in range(20):
            produced.append(i)
            yield Page([{"id": str(i)}], str(i), str(i + 1), {})

    with PagePipeline(slow_pages(), maxsize=3) as pipeline:
        it = iter(pipeline)
        next(it)
        time.sleep(0.3)
        # consumed 1, queue holds 3, the producer holds at most one more page waiting to be queued
        assert len(produced) <= 1 + 3 + 1
    assert len(produced) < 20  # leaving early stopped the producer


def test_pipeline_reraises_fetch_errors():
    def failing():
        yield Page([], "a", "b", {})
        raise RuntimeError("fetch failed")

    with PagePipeline(failing(), maxsize=2) as pipeline, pytest.raises(RuntimeError, match="fetch failed"):
        list(pipeline)


def test_pipeline_rejects_zero_queue():
    with pytest.raises(ValueError, match="page_queue_size"):
        PagePipeline(iter([]), maxsize=0)


def test_pipeline_assembles_whole_batches_ahead_of_the_writer():
    fetched = []

    def pages():
        for i in range(12):
            fetched.append(i)
            yield Page([{"id": str(i)}] * 5, str(i), str(i + 1) if i < 11 else None, {})

    with PagePipeline(pages(), maxsize=1, batch_rows=20) as pipeline:
        it = iter(pipeline)
        first = next(it)
        time.sleep(0.3)  # "writing" the first batch: the next whole batch is fetched meanwhile
        assert len(first) == 4
        assert len(fetched) >= 8  # batch 2 complete (and batch 3 started) while batch 1 was written
        rest = list(it)
    assert [len(b) for b in rest] == [4, 4]


def test_batches_groups_pages_by_rows():
    pages = [Page([{"id": i}] * 4, str(i), str(i + 1), {}) for i in range(5)]
    sizes = [len(b) for b in batches(iter(pages), max_rows=10)]
    assert sizes == [3, 2]


def test_dedupe_keeps_last():
    assert dedupe_by_key([{"id": 1, "v": 1}, {"id": 1, "v": 2}, {"id": 2}]) == [{"id": 1, "v": 2}, {"id": 2}]
    with pytest.raises(ValueError, match="no 'id'"):
        dedupe_by_key([{"v": 1}])


def test_fetch_thread_runs_while_writer_works():
    events = []
    lock = threading.Lock()

    def pages():
        for i in range(4):
            with lock:
                events.append(("fetched", i))
            yield Page([{"id": str(i)}], str(i), str(i + 1) if i < 3 else None, {})

    with PagePipeline(pages(), maxsize=2) as pipeline:
        for batch in pipeline:
            time.sleep(0.05)  # a slow write: the next pages are fetched meanwhile
            with lock:
                events.append(("written", batch[0].url))
    first_written = events.index(("written", "0"))
    assert ("fetched", 1) in events[:first_written]


def _count_deletes(writer):
    deletes = []
    original = writer._delete_keys

    def spy(table, column, keys):
        deletes.append((str(table), len(keys)))
        original(table, column, keys)

    writer._delete_keys = spy
    return deletes


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_unique_keys_load_into_an_empty_table_skips_the_delete_and_resumes_exactly(kind, tmp_path):
    if kind == "duckdb":
        writer = DuckDBWriter(duckdb.connect(str(tmp_path / "u.duckdb")), BADGES, TABLE, children=True)
    else:
        writer = SqlWriter(
            sqlite3.connect(str(tmp_path / "u.sqlite")), BADGES, TABLE, placeholder="?", children=True
        )
    items = [_badge(i) for i in range(95)]
    deletes = _count_deletes(writer)

    def die_after_batch_3(cp):
        if cp.pages >= 6:
            raise _Boom()

    with pytest.raises(_Boom):
        run_transfer(
            open_pages=_pages(items),
            writer=writer,
            key="k",
            fingerprint="f",
            batch_rows=20,
            after_commit=die_after_batch_3,
            unique_keys=True,
        )
    assert writer.append_only is True
    assert writer.count() == 60
    # the resumed load: the table still holds only this load's rows, so no delete but for the batch of the
    # refetched page (a commit may have fallen inside it)
    result = run_transfer(
        open_pages=_pages(items),
        writer=writer,
        key="k",
        fingerprint="f",
        batch_rows=20,
        prune=True,
        unique_keys=True,
    )
    assert result.resumed is True
    assert writer.append_only is True
    assert deletes == [("badges", 20), ("badges_skills", 20), ("badges_evidence", 20)]
    assert (result.rows, writer.count()) == (95, 95)
    assert writer.fetchall("SELECT COUNT(DISTINCT id) FROM badges") == [(95,)]
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(190,)]

    # exact content: the same as a load with the per-batch delete into a fresh table
    if kind == "duckdb":
        other = DuckDBWriter(duckdb.connect(str(tmp_path / "v.duckdb")), BADGES, TABLE, children=True)
    else:
        other = SqlWriter(
            sqlite3.connect(str(tmp_path / "v.sqlite")), BADGES, TABLE, placeholder="?", children=True
        )
    run_transfer(open_pages=_pages(items), writer=other, key="k", fingerprint="f", batch_rows=20)
    assert other.append_only is False
    assert _content(writer) == _content(other)
    other.close()

    # a table holding rows of another load: the next load deletes each batch's keys again (an upsert)
    changed = [_badge(i, state="revoked") for i in range(95)]
    again = run_transfer(
        open_pages=_pages(changed), writer=writer, key="k", fingerprint="f", batch_rows=20, unique_keys=True
    )
    assert again.resumed is False
    assert writer.append_only is False
    assert deletes
    assert writer.count() == 95
    assert writer.fetchall("SELECT DISTINCT state FROM badges") == [("revoked",)]
    assert writer.fetchall("SELECT COUNT(*) FROM badges_skills") == [(190,)]
    writer.close()


@pytest.mark.parametrize(("chunk", "expected"), [(10, [10] * 9 + [5]), (None, [30, 30, 30, 5])])
def test_append_only_load_inserts_chunks_but_commits_every_batch_rows(tmp_path, chunk, expected):
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "c.duckdb")), BADGES, TABLE)
    assert writer.append_chunk_rows is None  # DuckDB: one INSERT per committed batch by default
    writer.append_chunk_rows = chunk
    upserts = []
    original = writer.write

    def spy(chunks, meta):
        upserts.append(sum(len(c) for c in chunks))
        return original(chunks, meta)

    writer.write = spy
    committed = []
    items = [_badge(i) for i in range(95)]
    result = run_transfer(
        open_pages=_pages(items),
        writer=writer,
        key="k",
        fingerprint="f",
        batch_rows=30,
        unique_keys=True,
        after_commit=lambda cp: committed.append((cp.pages, cp.rows, cp.next_url)),
    )
    assert upserts == expected
    assert committed == [(3, 30, "30"), (6, 60, "60"), (9, 90, "90"), (10, 95, None)]
    assert (result.rows, result.batches, writer.count()) == (95, 4, 95)
    writer.close()


def test_transfer_run_steps_read_the_checkpoint_once_then_resume_stream_and_finish(tmp_path):
    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "s.duckdb")), BADGES, TABLE)
    items = [_badge(i) for i in range(95)]

    def die_after_batch_2(cp):
        if cp.pages >= 4:
            raise _Boom()

    with pytest.raises(_Boom):
        run_transfer(
            open_pages=_pages(items),
            writer=writer,
            key="k",
            fingerprint="f",
            batch_rows=20,
            after_commit=die_after_batch_2,
        )
    ensured = []
    ensure = writer.ensure_tables

    def count_ensure(extra_ddl=()):
        ensured.append(list(extra_ddl))
        ensure(extra_ddl)

    writer.ensure_tables = count_ensure

    run = TransferRun(writer=writer, key="k", batch_rows=20, prune=True)
    saved = run.saved()  # what a caller reads to decide its request (a bootstrap load)
    assert saved is not None and (saved.status, saved.pages, saved.rows) == ("running", 4, 40)
    assert run.saved() is saved
    assert run.start("f") is saved  # the same request: continued, not restarted
    assert (run.resumed, run.resumed_at) == (True, 4)
    assert len(ensured) == 1  # tables created once for the whole load
    run.stream(_pages(items))
    assert (run.checkpoint.status, run.checkpoint.pages, run.batches) == ("fetched", 10, 3)
    run.finish()
    assert run.checkpoint.status == "done"
    result = run.result()
    assert (result.rows, result.resumed_at_page, result.pruned, result.batches) == (95, 4, 0, 3)
    assert writer.count() == 95
    assert len(ensured) == 1
    writer.close()


def _copy_formats(writer, monkeypatch):
    """The formats of the COPY statements psycopg runs, in order, as they run."""
    import psycopg

    formats = []
    real = psycopg.Cursor.copy

    def copy(self, statement, *args, **kwargs):
        formats.append("binary" if "FORMAT BINARY" in str(statement) else "text")
        return real(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", copy)
    return formats


def _postgres_rows(writer, *names):
    cols = ", ".join(names)
    return {r[0]: r[1:] for r in writer.fetchall(f"SELECT id, {cols} FROM badges")}


@pytest.mark.parametrize(("raw_json_type", "created"), [(None, "json"), ("jsonb", "jsonb")])
@pytest.mark.parametrize("append_only", [True, False])
def test_postgres_sends_clean_batches_as_binary_copy_with_the_same_values(
    request, append_only, monkeypatch, raw_json_type, created
):
    options = {"raw_json_type": raw_json_type} if raw_json_type else {}
    writer, cleanup = _postgres_writer(request, children=False, **options)
    formats = _copy_formats(writer, monkeypatch)
    try:
        writer.ensure_tables()
        writer.prepare_load(append_only=append_only)
        items = [
            _badge(1, issued_to='Zoë 𝔘 \\ "q"', expires_at="2026-03-04T05:06:07.123456+05:30"),
            _badge(2, issued_to="nul\u0000 dropped", issued_to_middle_name=None),
        ]
        assert writer.write([_raw_page(items, "p1")], LoadMeta.new("l")) == 2
        writer.commit()
        assert formats == ["binary"] and _raw_column_type(writer) == created  # json unless asked otherwise
        rows = _postgres_rows(writer, "issued_to", "expires_at", "issued_at", "public", "raw", "_load_id")
        assert rows["id-00001"][0] == 'Zoë 𝔘 \\ "q"'
        assert rows["id-00001"][1].isoformat() == "2026-03-03T23:36:07.123456+00:00"  # the same instant
        assert rows["id-00001"][2].isoformat() == "2025-01-02T03:04:05+00:00"
        assert rows["id-00001"][3] is False and rows["id-00002"][3] is True
        assert rows["id-00001"][4] == items[0]  # from the record's own bytes
        assert rows["id-00002"][0] == "nul dropped" and rows["id-00002"][4]["issued_to"] == "nul dropped"
        assert rows["id-00002"][1] is None and rows["id-00001"][5] == "l"
    finally:
        cleanup()


@pytest.mark.parametrize(
    "odd",
    [
        {"issued_at": "2025-01-02 03:04:05+00"},  # PostgreSQL reads it; RFC 3339 does not
        {"issued_at": "2025-01-02T03:04:05"},  # no offset: UTC, as Credly means it (not the session's zone)
        {"state": 3},  # a number in a text column
    ],
)
def test_postgres_sends_a_page_with_an_odd_value_as_text_after_the_binary_pages(request, odd, monkeypatch):
    writer, cleanup = _postgres_writer(request, children=False)
    formats = _copy_formats(writer, monkeypatch)
    try:
        writer.execute("SET TIME ZONE 'Asia/Kathmandu'")  # a session not in UTC (+05:45)
        writer.ensure_tables()
        writer.prepare_load(append_only=True)
        clean, weird = _badge(1), _badge(2, **odd)
        pages = [_raw_page([clean], "p1"), _raw_page([weird], "p2"), _raw_page([_badge(3)], "p3")]
        written = writer.write(pages, LoadMeta.new("l"))
        writer.commit()
        # the clean pages in one binary COPY, the odd one in a text COPY after it (one transaction)
        assert written == 3 and formats == ["binary", "text"]
        assert writer.count() == 3
        rows = _postgres_rows(writer, "state", "issued_at")
        assert rows["id-00001"][1] == parse_timestamp("2025-01-02T03:04:05Z")  # read in +05:45: the instant
        assert rows["id-00002"][0] == str(weird["state"])
        # the same instant as the product reads it (a naive one as UTC), whatever the session's time zone
        assert rows["id-00002"][1] == parse_timestamp(weird["issued_at"])
    finally:
        cleanup()


def test_duckdb_reads_a_timestamp_without_offset_as_utc_in_any_session_time_zone(tmp_path):
    conn = duckdb.connect(str(tmp_path / "tz.duckdb"))
    conn.execute("SET TimeZone = 'Asia/Kathmandu'")  # +05:45 (by default DuckDB takes the machine's)
    writer = DuckDBWriter(conn, BADGES, TABLE)
    writer.ensure_tables()
    shapes = [
        "2025-01-02T03:04:05",
        "2025-01-02 03:04:05Z",
        "2025-01-02T08:49:05+05:45",
        "2025-01-01T17:34:05-09:30",
    ]
    items = [_badge(i, issued_at=text) for i, text in enumerate(shapes)]
    items[0]["expires_at"] = "2026-03-04T05:06:07.123456+05:30"  # microseconds kept
    items[1]["expires_at"] = None
    assert writer.write([_raw_page(items, "p1")], LoadMeta.new("l")) == len(shapes)
    writer.commit()
    stored = {r[0] for r in writer.fetchall("SELECT issued_at FROM badges")}
    assert stored == {datetime(2025, 1, 2, 3, 4, 5)}  # the one UTC instant of every shape
    expires = dict(writer.fetchall("SELECT id, expires_at FROM badges WHERE id IN ('id-00000', 'id-00001')"))
    assert expires == {"id-00000": datetime(2026, 3, 3, 23, 36, 7, 123456), "id-00001": None}
    writer.close()


def test_postgres_sends_text_copy_into_a_table_of_other_column_types(request):
    # a table the user created with raw as json (not jsonb) and a timestamp without time zone: binary COPY
    # needs the exact types, so every batch goes as text, which PostgreSQL casts as before
    writer, cleanup = _postgres_writer(request, children=False)
    try:
        (ddl,) = [s for s in writer_ddl(writer) if "CREATE TABLE" in s]
        ddl = ddl.replace("raw JSONB", "raw JSON").replace("issued_at TIMESTAMPTZ", "issued_at TIMESTAMP")
        writer.execute(ddl)
        writer.commit()
        writer.prepare_load(append_only=False)
        assert writer.write([_raw_page([_badge(1), _badge(2)], "p1")], LoadMeta.new("l")) == 2
        writer.commit()
        assert writer._binary_usable() is False
        rows = _postgres_rows(writer, "issued_at", "CAST(raw AS TEXT)")
        assert rows["id-00001"][0].isoformat() == "2025-01-02T03:04:05"
        assert json.loads(rows["id-00002"][1])["id"] == "id-00002"
    finally:
        cleanup()


def _raw_column_type(writer):
    return writer.fetchall(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass('badges') AND attname = 'raw'"
    )[0][0]


@pytest.mark.parametrize("append_only", [True, False])
def test_postgres_raw_json_type_json_keeps_the_record_text_and_binary_copy(request, append_only, monkeypatch):
    writer, cleanup = _postgres_writer(request, children=False, raw_json_type="json")
    formats = _copy_formats(writer, monkeypatch)
    try:
        writer.ensure_tables()
        writer.prepare_load(append_only=append_only)
        items = [_badge(1, issued_to='Zoë 𝔘 \\ "q"'), _badge(2, public=True)]
        page = _raw_page(items, "p1", pretty=True)  # line breaks and tabs inside each record
        assert writer.write([page], LoadMeta.new("l")) == 2
        writer.commit()
        assert _raw_column_type(writer) == "json"
        assert formats == ["binary"]
        rows = _postgres_rows(writer, "issued_to", "public", "CAST(raw AS TEXT)")
        assert rows["id-00001"][0] == 'Zoë 𝔘 \\ "q"' and rows["id-00002"][1] is True
        # json keeps each record's text byte for byte, as the page held it (jsonb would re-serialize it)
        sent = [bytes(r).decode() for r in msgspec.json.decode(page.json, type=list[msgspec.Raw])]
        assert [rows[f"id-0000{i}"][2] for i in (1, 2)] == sent
        assert json.loads(rows["id-00001"][2]) == items[0]
    finally:
        cleanup()


def test_postgres_raw_json_type_leaves_an_existing_table_its_type(request, monkeypatch):
    writer, cleanup = _postgres_writer(request, children=False, raw_json_type="json")
    formats = _copy_formats(writer, monkeypatch)
    try:
        for ddl in writer_ddl(writer):  # jsonb: the dialect's JSON type, as raw_json_type="jsonb" creates it
            writer.execute(ddl)
        writer.ensure_tables()
        writer.prepare_load(append_only=False)
        assert writer.write([_raw_page([_badge(1)], "p1")], LoadMeta.new("l")) == 1
        writer.commit()
        assert _raw_column_type(writer) == "jsonb" and formats == ["binary"]
        assert _postgres_rows(writer, "raw")["id-00001"][0] == _badge(1)
    finally:
        cleanup()


def test_postgres_writer_refuses_an_unknown_raw_json_type():
    with pytest.raises(ValueError, match="raw_json_type must be one of jsonb, json, got 'JSON'"):
        PostgresWriter(object(), BADGES, TABLE, raw_json_type="JSON")


def writer_ddl(writer):
    from airflow_provider_credly.warehouse.schema import create_table_sql

    return create_table_sql(writer.spec, writer.table, "postgres")
