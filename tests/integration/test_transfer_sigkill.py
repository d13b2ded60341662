"""A badge transfer SIGKILLed mid-load (as an out-of-memory kill would) resumes on the next try and ends exact.

Each load runs ``CredlyBadgesToSqlOperator.execute`` in its own Python process (``sigkill_worker.py``, same
interpreter, its own ``AIRFLOW_HOME``, connections from ``AIRFLOW_CONN_*`` JSON), over real HTTP to the
emulator, into a real DuckDB file or the real PostgreSQL. The test reads the worker's progress lines (DuckDB
allows one writing process per file, so the file is opened only once the worker is dead), kills it with
``SIGKILL`` at a chosen step (a batch written but not committed, its checkpoint saved but not committed, just
committed, the final checkpoint...) or while it streams, checks what survived is consistent (the committed
checkpoint matches the committed rows; DuckDB's WAL replays), then runs the transfer again and checks every
badge of the emulator is in the table exactly once, with the checkpoint ``done``. A sliced load
(``parallel_cursors=4``) is killed while its cursors stream: the rerun resumes every slice from its own committed
checkpoint and fetches no finished slice again (the emulator counts cursor requests per slice).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from tests.conftest import POSTGRES_DSN, connect_credly, set_connection
from tests.integration.transfer_support import (
    assert_table_matches,
    badge_select,
    change_some_badges,
    cursor_requests_by_slice,
    expected_badges,
    slice_badge_ids,
)

pytestmark = [pytest.mark.integration]

WORKER = Path(__file__).with_name("sigkill_worker.py")
N_BADGES = 3_000
PAGE = 100
BATCH_ROWS = 500  # 5 pages per batch, i.e. per transaction and checkpoint
PAGES_PER_BATCH = BATCH_ROWS // PAGE
N_PAGES = N_BADGES // PAGE
TABLE = "credly_badges"
KEY = "sigkill.load:credly_badges"
WAIT_S = 120  # a guard against a hung worker, not a timing assertion


class Worker:
    """A transfer process and its stdout lines (read by a thread, so the test never blocks on the pipe)."""

    def __init__(self, settings: dict[str, Any], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _explain(self, why: str) -> str:
        self._stderr.flush()
        tail = self.log.read_text()[-3000:]
        return f"{why}; worker said {self.seen[-5:]}; stderr tail:\n{tail}"

    def wait_for(self, prefix: str) -> list[str]:
        """The words of the first next line starting with ``prefix``."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(self._explain(f"no {prefix!r} line within {WAIT_S} s")) from None
            if line is None:
                self.proc.wait()
                raise AssertionError(
                    self._explain(f"worker exited ({self.proc.returncode}) before {prefix!r}")
                )
            self.seen.append(line)
            if line.startswith(prefix + " "):
                return line.split(" ")[1:]

    def go_on(self) -> None:
        """Let a worker waiting at its ``hold_at`` point continue."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def sigkill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=WAIT_S) == -signal.SIGKILL
        self._stderr.close()

    def result(self) -> dict[str, Any]:
        """The operator's summary; the worker must then exit cleanly."""
        words = self.wait_for("RESULT")
        assert self.proc.wait(timeout=WAIT_S) == 0, self._explain("worker failed after its result")
        self._stderr.close()
        result: dict[str, Any] = json.loads(" ".join(words))
        return result


class Warehouse:
    """Read access to the destination (only while no worker holds it, for DuckDB)."""

    conn_id: str

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def checkpoint(self) -> tuple[Any, ...] | None:
        rows = self.query(
            "SELECT status, pages, rows, load_id FROM credly_transfer_checkpoints "
            f"WHERE transfer_key = '{KEY}'"
        )
        assert len(rows) <= 1, f"checkpoint rows: {rows}"
        return rows[0] if rows else None

    def slice_checkpoints(self) -> dict[int, tuple[str, int, int]]:
        """``{slice index: (status, pages, rows)}`` of a sliced load's slices that have a checkpoint."""
        prefix = f"{KEY}/slice-"
        rows = self.query(
            "SELECT transfer_key, status, pages, rows FROM credly_transfer_checkpoints "
            f"WHERE transfer_key LIKE '{prefix}%'"
        )
        return {int(r[0][len(prefix) :]): (str(r[1]), int(r[2]), int(r[3])) for r in rows}

    def plan(self) -> list[tuple[str | None, str | None]]:
        """The slices' ``(since, until)`` saved in the load's fingerprint (with its first commit)."""
        (row,) = self.query(
            f"SELECT fingerprint FROM credly_transfer_checkpoints WHERE transfer_key = '{KEY}'"
        )
        return [(lo, hi) for lo, hi in json.loads(str(row[0]).partition("\nslices=")[2])]

    def ids(self) -> set[str]:
        return {str(r[0]) for r in self.query(f"SELECT id FROM {TABLE}")}

    def counts(self) -> tuple[int, int, int]:
        """Rows, distinct ids and distinct load ids of the badge table."""
        (row,) = self.query(f"SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT _load_id) FROM {TABLE}")
        return int(row[0]), int(row[1]), int(row[2])

    def rows(self) -> list[tuple[Any, ...]]:
        return self.query(f"SELECT {badge_select()} FROM {TABLE}")


class DuckDBWarehouse(Warehouse):
    conn_id = "duckdb_warehouse"

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).fetchall()


class PostgresWarehouse(Warehouse):
    conn_id = "postgres_warehouse"

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={self.schema}") as conn:
            return conn.execute(sql.replace("AS VARCHAR", "AS TEXT")).fetchall()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """The destination: a DuckDB file, or a fresh schema of the real PostgreSQL (skipped when unreachable
    outside CI, a failure under ``CI=true``: the ``postgres_conn`` fixture's rule)."""
    if request.param == "duckdb":
        return DuckDBWarehouse(request.getfixturevalue("duckdb_conn"))
    return PostgresWarehouse(request.getfixturevalue("postgres_conn"))


@pytest.fixture
def emulator(credly_emulator_factory, monkeypatch: pytest.MonkeyPatch):
    """3,000 badges in pages of 100 behind connection ``credly_default`` (fast retries)."""
    emu = credly_emulator_factory(badges=N_BADGES, employees=5, hv_page_size=PAGE, seed=11)
    connect_credly(monkeypatch, emu, backoff_max=0.05)
    return emu


@pytest.fixture
def start(tmp_path: Path, warehouse: Warehouse, emulator) -> Iterator[Any]:
    """``start(**settings)`` -> a running :class:`Worker` loading into ``warehouse``; killed at teardown."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    started: list[Worker] = []

    def start_worker(**settings: Any) -> Worker:
        env = {
            **os.environ,  # the AIRFLOW_CONN_* variables of the fixtures (and of the test)
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
        settings = {
            "destination": warehouse.conn_id,
            "table": TABLE,
            "checkpoint_key": KEY,
            "batch_rows": BATCH_ROWS,
            **settings,
        }
        worker = Worker(settings, env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start_worker
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


def assert_exact(warehouse: Warehouse, emulator: Any, pages: int | None = None) -> None:
    """Every badge of the emulator exactly once, with the values it lists now, and the checkpoint done after
    ``pages`` (default: the pages of one cursor over every badge)."""
    expected = expected_badges(emulator.state, "minimal")
    if pages is None:
        pages = -(-len(expected) // PAGE)
    saved = warehouse.checkpoint() or (None, None, None, None)
    assert saved[:3] == ("done", pages, len(expected))
    count, distinct, loads = warehouse.counts()
    assert count == distinct == len(expected)
    assert loads == 1  # the rerun continued the killed load
    table = warehouse.rows()
    assert {r[0] for r in table} == set(expected)
    assert_table_matches(table, expected)


def assert_consistent(warehouse: Warehouse, status: str, pages: int) -> str:
    """What the killed worker left: the checkpoint at ``pages`` matching the committed rows; its load id."""
    saved = warehouse.checkpoint()
    assert saved is not None
    assert saved[:3] == (status, pages, pages * PAGE)
    count, distinct, loads = warehouse.counts()
    assert (count, distinct, loads) == (pages * PAGE, pages * PAGE, 1 if pages else 0)
    return str(saved[3])


def assert_wal_left(warehouse: Warehouse) -> None:
    """DuckDB: the killed process left committed work in the WAL (the next open must replay it)."""
    if isinstance(warehouse, DuckDBWarehouse):
        wal = warehouse.path.with_name(warehouse.path.name + ".wal")
        assert wal.exists() and wal.stat().st_size > 0


def test_sigkill_while_streaming_then_rerun_is_exact(start, warehouse, emulator):
    emulator.set_faults(latency_ms=40)  # ~1 s per batch: the kill lands inside the next one
    worker = start()
    pages, rows, status = worker.wait_for("COMMITTED")
    worker.sigkill()
    assert (int(pages), int(rows), status) == (PAGES_PER_BATCH, BATCH_ROWS, "running")
    assert_wal_left(warehouse)
    load_id = assert_consistent(warehouse, "running", PAGES_PER_BATCH)

    emulator.clear_faults()
    result = start().result()
    assert (result["resumed"], result["resumed_at_page"], result["load_id"]) == (
        True,
        PAGES_PER_BATCH,
        load_id,
    )
    assert_exact(warehouse, emulator)


# (how the worker is stopped, the checkpoint status and pages that must survive the kill)
STEPS = {
    "batch-3-written-uncommitted": ({"stop_at": "write:3"}, "running", 2 * PAGES_PER_BATCH),
    "batch-3-checkpoint-saved-uncommitted": ({"stop_at": "save:3"}, "running", 2 * PAGES_PER_BATCH),
    "done-checkpoint-saved-uncommitted": ({"stop_at": "save-done:1"}, "fetched", N_PAGES),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_sigkill_at_a_step_then_rerun_is_exact(start, warehouse, emulator, step):
    stop, status, pages = STEPS[step]
    worker = start(**stop)
    worker.wait_for("ENTER" if "announce" in stop else "AT")
    worker.sigkill()
    assert_wal_left(warehouse)
    load_id = assert_consistent(warehouse, status, pages)

    result = start().result()
    assert (result["resumed"], result["resumed_at_page"], result["load_id"]) == (True, pages, load_id)
    assert_exact(warehouse, emulator)


def test_sigkill_inside_a_commit_then_rerun_is_exact(start, warehouse, emulator):
    """Killed as it enters the commit of batch 3: the batch is committed whole or not at all."""
    worker = start(announce="commit:3")
    worker.wait_for("ENTER")
    worker.sigkill()
    saved = warehouse.checkpoint()
    assert saved is not None
    assert saved[:3] in {("running", n * PAGES_PER_BATCH, n * BATCH_ROWS) for n in (2, 3)}, (
        f"checkpoint after the kill: {saved}"
    )
    assert_consistent(warehouse, "running", saved[1])

    result = start().result()
    assert (result["resumed"], result["resumed_at_page"]) == (True, saved[1])
    assert_exact(warehouse, emulator)


@pytest.mark.parametrize("stop_at", ["write:2", "prune:1"])
def test_sigkill_during_a_pruning_reload_then_rerun_is_exact(start, warehouse, emulator, stop_at):
    """A full reload over a loaded table (batches delete their ids before inserting, then stale rows are
    pruned) killed in a batch or in the prune: the rerun ends with exactly the badges the API lists now."""
    first = start(prune=True).result()
    changed = change_some_badges(emulator.state)  # one revoked, one replaced (leaves the cursor), two new
    expected = expected_badges(emulator.state, "minimal")
    assert changed["replaced"] not in expected

    worker = start(prune=True, stop_at=stop_at)
    worker.wait_for("AT")
    worker.sigkill()
    assert_wal_left(warehouse)
    saved = warehouse.checkpoint()
    assert saved is not None
    assert saved[3] != first["load_id"]
    count, distinct, loads = warehouse.counts()
    assert count == distinct  # never a badge twice, even mid-reload
    assert loads == 2  # rows of the killed load and of the first one
    if stop_at == "write:2":
        assert saved[:3] == ("running", PAGES_PER_BATCH, BATCH_ROWS)
        assert count == N_BADGES  # the committed first batch replaced rows in place
    else:
        assert saved[:3] == ("fetched", -(-len(expected) // PAGE), len(expected))
        assert count == len(expected) + 1  # the prune's delete was rolled back: the replaced badge is back

    result = start(prune=True).result()
    assert (result["resumed"], result["resumed_at_page"], result["load_id"]) == (True, saved[1], saved[3])
    assert result["pruned"] == 1  # the replaced badge
    assert_exact(warehouse, emulator)


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("how", ["stop_at", "announce"])
def test_duckdb_sigkill_around_a_checkpointing_commit_then_rerun_is_exact(
    start, warehouse, emulator, monkeypatch, how
):
    """DuckDB with a tiny ``checkpoint_threshold``: every commit also checkpoints the WAL into the database
    file. Killed just after such a commit (the WAL is then empty: the setting took effect) or as the worker
    enters one (the kill lands in the commit or its checkpoint); the file opens and the rerun ends exact."""
    set_connection(
        monkeypatch,
        warehouse.conn_id,
        conn_type="duckdb",
        host=str(warehouse.path),
        extra={"settings": {"checkpoint_threshold": "1KiB"}},
    )
    worker = start(**{how: "commit:3"})
    worker.wait_for("AT" if how == "stop_at" else "ENTER")
    worker.sigkill()
    wal = warehouse.path.with_name(warehouse.path.name + ".wal")
    if how == "stop_at":
        assert not wal.exists() or wal.stat().st_size == 0, "the commit did not checkpoint"
        pages = 3 * PAGES_PER_BATCH
    else:
        saved = warehouse.checkpoint()
        assert saved is not None
        pages = saved[1]
        assert pages in (2 * PAGES_PER_BATCH, 3 * PAGES_PER_BATCH), saved
    assert_consistent(warehouse, "running", pages)

    result = start().result()
    assert (result["resumed"], result["resumed_at_page"]) == (True, pages)
    assert_exact(warehouse, emulator)


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_duckdb_sigkill_after_a_commit_inside_a_page_then_rerun_is_exact(start, warehouse, emulator):
    """The operator's default ``batch_rows`` into DuckDB: a first load commits at the end of each row group
    (here 250 rows, so the first commit falls inside the third page of 100). Killed just after that commit,
    the table holds 250 rows and the checkpoint the two whole pages before; the rerun fetches the third page
    again, replaces its keys and ends exact."""
    worker = start(batch_rows=None, row_group_rows=250, stop_at="commit:1")
    worker.wait_for("AT")
    worker.sigkill()
    saved = warehouse.checkpoint()
    assert saved is not None and saved[:3] == ("running", 2, 2 * PAGE)
    count, distinct, loads = warehouse.counts()
    assert (count, distinct, loads) == (250, 250, 1)  # 50 records of page 3 committed ahead of it
    before = emulator.stats()["by_route"]["GET badges.high_volume"]

    result = start(batch_rows=None, row_group_rows=250).result()
    assert (result["resumed"], result["resumed_at_page"], result["rows"]) == (True, 2, N_BADGES)
    # pages 3..30 requested once each: the page the commit fell in again, no other
    assert emulator.stats()["by_route"]["GET badges.high_volume"] - before == N_PAGES - 2
    assert_exact(warehouse, emulator)


def _statement_blocked_by(pid: int) -> str:
    """The query of the backend waiting for a lock held by backend ``pid`` (polled until there is one)."""
    deadline = time.monotonic() + WAIT_S  # a guard against a hung worker, not a timing assertion
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT query FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
            ).fetchall()
            if rows:
                return str(rows[0][0])
            time.sleep(0.05)
    raise AssertionError(f"no statement blocked by backend {pid} within {WAIT_S} s")


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_sigkill_inside_the_merge_statement_then_rerun_is_exact(start, warehouse, emulator):
    """PostgreSQL: batch 3's write is held inside the statement (blocked on a lock this test takes) and the
    worker killed there; the server rolls the batch back and the rerun ends exact."""
    worker = start(hold_at="commit:2")
    worker.wait_for("HOLD")
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={warehouse.schema}") as blocker:
        blocker.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")  # blocks writes, not reads
        worker.go_on()
        statement = _statement_blocked_by(blocker.info.backend_pid)
        worker.sigkill()
        # the worker died inside batch 3's write into the table (pg_stat_activity shows its first 1 kB): the
        # COPY of a fresh load's typed rows, or the merge of a load that deletes
        assert statement.startswith((f"COPY {TABLE} (", f"INSERT INTO {TABLE} ")), statement
    # the lock is released: the orphaned statement finishes, finds its client gone and is rolled back
    assert_consistent(warehouse, "running", 2 * PAGES_PER_BATCH)

    result = start().result()
    assert (result["resumed"], result["resumed_at_page"]) == (True, 2 * PAGES_PER_BATCH)
    assert_exact(warehouse, emulator)


#: the sliced load: 4 cursors over 7 slices of 400+ badges (at least 4 cursor pages each: 3,000 badges hold 7),
#: committed every 2 pages; each request costs a few ms, so slices finish one by one while the others stream
CURSORS = 4
SLICED = {"parallel_cursors": CURSORS, "min_slice_badges": 1, "batch_rows": 2 * PAGE}
SLICED_LATENCY_MS = 10


def _wait_until_idle(emulator: Any) -> None:
    """Wait until the emulator has closed the killed worker's connections: its requests in flight are then
    counted (or never will be), so the requests counted afterwards are the rerun's."""
    deadline = time.monotonic() + WAIT_S  # a guard against a stuck handler, not a timing assertion
    while emulator.server.open_connections():
        assert time.monotonic() < deadline, "the emulator kept the killed worker's connections open"
        time.sleep(0.01)


def assert_slices_consistent(
    warehouse: Warehouse, emulator: Any
) -> tuple[list[tuple[str | None, str | None]], dict[int, tuple[str, int, int]], str]:
    """What a killed sliced load left: the plan in the load's checkpoint, and each slice's committed checkpoint
    matching its committed rows (the first ``rows`` badges of its cursor, ``pages`` pages of them); the load's
    checkpoint adds them up. Returns the plan, the slice checkpoints and the load id."""
    status, pages, rows, load_id = warehouse.checkpoint() or (None, 0, 0, None)
    assert status == "running"
    plan = warehouse.plan()
    assert len(plan) >= CURSORS  # the plan was saved with the first commit
    saved = warehouse.slice_checkpoints()
    assert set(saved) <= set(range(len(plan)))
    table = warehouse.ids()
    count, distinct, loads = warehouse.counts()
    assert count == distinct == len(table) == rows == sum(cp[2] for cp in saved.values())
    assert pages == sum(cp[1] for cp in saved.values())
    assert loads == 1
    for i, bounds in enumerate(plan):
        order = slice_badge_ids(emulator.state, bounds)
        cp_status, cp_pages, cp_rows = saved.get(i, ("running", 0, 0))
        assert table.intersection(order) == set(order[:cp_rows]), (
            f"slice {i} {bounds}: rows beyond its checkpoint"
        )
        assert cp_rows == min(cp_pages * PAGE, len(order)), (i, saved.get(i))
        assert (cp_status == "fetched") == (cp_rows == len(order)), (i, saved.get(i))
    return plan, saved, str(load_id)


def test_sigkill_a_sliced_load_then_rerun_resumes_every_slice(start, warehouse, emulator):
    """``parallel_cursors=4`` killed once a slice has finished while others are mid-cursor: the rerun fetches
    each unfinished slice from its committed checkpoint (its remaining pages, each once), no finished slice
    again, plans nothing, and ends exact."""
    emulator.set_faults(latency_ms=SLICED_LATENCY_MS)
    worker = start(**SLICED)
    while True:  # the first commit with a finished slice and another one mid-cursor
        fetched, running = map(int, worker.wait_for("SLICES"))
        if fetched and running:
            break
    worker.sigkill()
    _wait_until_idle(emulator)
    assert_wal_left(warehouse)
    plan, saved, load_id = assert_slices_consistent(warehouse, emulator)
    finished = {i for i, cp in saved.items() if cp[0] == "fetched"}
    mid_cursor = {i for i, cp in saved.items() if cp[0] == "running"}
    assert len(finished) >= fetched, saved  # what the worker reported committed survived the kill
    assert mid_cursor or len(saved) < len(plan), "every slice had finished before the kill"
    before = cursor_requests_by_slice(emulator)
    probes_before = emulator.stats()["by_route"]["GET badges.list"]  # the plan's count probes

    emulator.clear_faults()
    result = start(**SLICED).result()
    assert (result["resumed"], result["resumed_at_page"], result["load_id"]) == (
        True,
        sum(cp[1] for cp in saved.values()),
        load_id,
    )
    assert (result["slices"], result["slices_skipped"]) == (len(plan), len(finished))
    after = cursor_requests_by_slice(emulator)
    # the saved plan was reused: neither its page-size probe (the unfiltered cursor) nor its count probes again
    assert after.get((None, None), 0) == before.get((None, None), 0)
    assert emulator.stats()["by_route"]["GET badges.list"] == probes_before
    total_pages = 0
    for i, bounds in enumerate(plan):
        pages = max(1, -(-len(slice_badge_ids(emulator.state, bounds)) // PAGE))
        total_pages += pages
        again = after.get(bounds, 0) - before.get(bounds, 0)
        if i in finished:
            assert again == 0, f"finished slice {i} {bounds} was fetched again"
        else:  # from its last committed page on (or its start): the remaining pages, each once
            assert again == pages - saved.get(i, ("running", 0, 0))[1], (i, bounds, saved.get(i))
    assert warehouse.slice_checkpoints() == {}  # a finished load keeps only its own checkpoint
    assert_exact(warehouse, emulator, pages=total_pages)
