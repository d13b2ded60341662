"""The DuckDB writer waits (bounded) for a file lock held by another process: DuckDB allows one writing
process per file, and Airflow runs every task in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from airflow_provider_credly.warehouse.schema import TableName
from airflow_provider_credly.warehouse.writers import DuckDBWriter, open_waiting_for_lock, writer_for

HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline()"


@pytest.fixture
def locked_file(tmp_path: Path):
    """A DuckDB file opened read-write by another process until ``release()`` is called."""
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"

    def release() -> None:
        if holder.poll() is None:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)

    try:
        yield path, release
    finally:
        release()


def test_the_lock_really_conflicts(locked_file) -> None:
    path, _ = locked_file
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(path))


def test_waits_until_the_other_process_lets_go(locked_file) -> None:
    path, release = locked_file
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        release()  # the other task finishes while this one waits

    conn = open_waiting_for_lock(lambda: duckdb.connect(str(path)), sleep=sleep)
    try:
        assert conn.execute("select 42").fetchone() == (42,)
    finally:
        conn.close()
    assert sleeps == [0.5]


def test_gives_up_after_the_timeout_with_a_clear_message(locked_file) -> None:
    path, _ = locked_file
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TimeoutError) as info:
        open_waiting_for_lock(
            lambda: duckdb.connect(str(path)), timeout=3, interval=1, sleep=sleep, clock=lambda: now[0]
        )
    message = str(info.value)
    assert "still locked by another process after waiting 3 s" in message
    assert "one writing process per file" in message and "pool with one slot" in message
    assert str(path) in message  # DuckDB's own text names the file
    assert now[0] == 3
    assert isinstance(info.value.__cause__, duckdb.IOException)


def test_other_errors_are_not_waited_for() -> None:
    def connect():
        raise duckdb.IOException("IO Error: Cannot open file: Permission denied")

    with pytest.raises(duckdb.IOException, match="Permission denied"):
        open_waiting_for_lock(connect, sleep=lambda s: pytest.fail("must not wait"))


class _FlakyDuckDBHook:
    """A DuckDB hook whose file is locked on the first open."""

    dialect_name = "duckdb"
    conn_type = "duckdb"

    def __init__(self) -> None:
        self.opens = 0

    def get_conn(self):
        self.opens += 1
        if self.opens == 1:
            raise duckdb.IOException(
                'IO Error: Could not set lock on file "w.duckdb": Conflicting lock is held'
            )
        return duckdb.connect(":memory:")


def test_writer_for_opens_duckdb_through_the_wait() -> None:
    from airflow_provider_credly.warehouse.schema import BADGES

    hook = _FlakyDuckDBHook()
    writer = writer_for(hook, BADGES, TableName.parse("credly_badges"))
    try:
        assert isinstance(writer, DuckDBWriter)
        assert hook.opens == 2
    finally:
        writer.close()
