"""A badge transfer SIGKILLed mid-load (as an out-of-memory kill would) resumes on the next try and ends exact.

Each load runs ``CredlyBadgesToSqlOperator.execute`` in its own Python process (``sigkill_worker.py``, same
interpreter, its own ``AIRFLOW_HOME``, connections from ``AIRFLOW_CONN_*`` JSON), over real HTTP to the
emulator, into a real DuckDB file or the real PostgreSQL. The test reads the worker's progress lines (DuckDB
allows one writing process per file, so the file is opened only once the worker is dead), kills it with
``SIGKILL`` at a chosen step (a batch written but not committed, its checkpoint saved but not committed, just
committed, the final checkpoint...) or while it streams, checks what survived is consistent (the committed
checkpoint matches the committed rows; DuckDB's WAL replays), then runs the transfer again and checks every
badge of the emulator is in the table exactly once, with the checkpoint ``done``.
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
    expected_badges,
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


def assert_exact(warehouse: Warehouse, emulator: Any) -> None:
    """Every badge of the emulator exactly once, with the values it lists now, and the checkpoint done."""
    expected = expected_badges(emulator.state, "minimal")
    status, pages, rows, _ = warehouse.checkpoint() or (None, None, None, None)
    assert (status, pages, rows) == ("done", -(-len(expected) // PAGE), len(expected))
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
