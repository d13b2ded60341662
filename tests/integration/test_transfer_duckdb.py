"""CredlyBadgesToSqlOperator into real DuckDB files through dag.test(), over real HTTP to the emulator."""

from __future__ import annotations

import duckdb
import pendulum
import pytest

from tests.integration.transfer_support import (
    N_BADGES,
    PAGE,
    assert_table_matches,
    badge_select,
    change_some_badges,
    emulator_fixture,  # noqa: F401  (the ``emulator`` fixture)
    expected_badges,
    load_dag_module,
    run_dag,
    task_states,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def dags():
    # a fresh import per test: operators cache their hooks, and each test has its own emulator
    return load_dag_module("xfer_badges")


def _rows(path, table="credly_badges"):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT {badge_select()} FROM {table}").fetchall()


def _loaded_at(path, table="credly_badges"):
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute(f"SELECT id, CAST(_loaded_at AS VARCHAR) FROM {table}").fetchall())


def _run(dag, **conf):
    dr = run_dag(dag, logical_date=pendulum.now("UTC"), run_conf=conf or None)
    return dr


def test_full_load_then_incremental_then_noop(airflow_db, emulator, duckdb_conn, dags):
    dr = _run(dags.xfer_badges)
    assert task_states(dr) == {"load": "success"}
    rows = _rows(duckdb_conn)
    assert len(rows) == N_BADGES
    assert_table_matches(rows, expected_badges(emulator.state))
    before = _loaded_at(duckdb_conn)

    changed = change_some_badges(emulator.state)
    dr = _run(dags.xfer_badges, mode="incremental")
    assert task_states(dr) == {"load": "success"}
    after = _loaded_at(duckdb_conn)
    touched = {i for i in after if after[i] != before.get(i)}
    # exactly the revoked badge, the replacement and the new badges were (re)written
    assert touched == {changed["revoked"], changed["replacement"], changed["new1"], changed["new2"]}
    expected = expected_badges(emulator.state)
    rows = _rows(duckdb_conn)
    by_id = {r[0]: r for r in rows}
    assert by_id[changed["revoked"]][1] == "revoked"
    # the replaced badge left the cursor: incremental loads keep its last copy, a pruning full load drops it
    assert changed["replaced"] in by_id
    assert changed["replaced"] not in expected
    assert_table_matches([r for r in rows if r[0] != changed["replaced"]], expected)

    dr = _run(dags.xfer_badges_prune)
    assert task_states(dr) == {"load": "success"}
    rows = _rows(duckdb_conn)
    assert_table_matches(rows, expected_badges(emulator.state))
    snapshot = sorted(rows)
    # rerunning changes nothing
    dr = _run(dags.xfer_badges_prune)
    assert task_states(dr) == {"load": "success"}
    assert sorted(_rows(duckdb_conn)) == snapshot


def test_kill_after_page_k_then_retry_is_exact(
    airflow_db, emulator, duckdb_conn, dags, tmp_path, monkeypatch
):
    marker = tmp_path / "killed"
    monkeypatch.setenv("CREDLY_TEST_KILL_AFTER_PAGES", "16")
    monkeypatch.setenv("CREDLY_TEST_KILL_MARKER", str(marker))
    dr = _run(dags.xfer_badges, badge_format="minimal")
    assert marker.exists(), "the injected kill did not happen"
    assert task_states(dr) == {"load": "success"}  # the retry finished the load
    ti = dr.get_task_instance("load")
    assert ti.try_number == 2
    with duckdb.connect(str(duckdb_conn), read_only=True) as con:
        (status, pages, rows) = con.execute(
            "SELECT status, pages, rows FROM credly_transfer_checkpoints"
        ).fetchone()
        n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM credly_badges").fetchone()
        loads = con.execute("SELECT COUNT(DISTINCT _load_id) FROM credly_badges").fetchone()[0]
    assert (status, pages, rows) == ("done", N_BADGES // PAGE, N_BADGES)
    assert n == distinct == N_BADGES
    assert loads == 1  # the retry continued the same load
    expected = expected_badges(emulator.state)
    assert {r[0] for r in _rows(duckdb_conn)} == set(expected)


def test_faults_5xx_429_and_drops_still_exact(airflow_db, emulator, duckdb_conn, dags):
    emulator.set_faults(error_rate=0.05, drop_rate=0.05, rate_limit=40, rate_limit_burst=4, seed=3)
    dr = _run(dags.xfer_badges)
    emulator.clear_faults()
    assert task_states(dr) == {"load": "success"}
    assert_table_matches(_rows(duckdb_conn), expected_badges(emulator.state))


def test_employees_and_events_reuse_the_machinery(airflow_db, emulator, duckdb_conn, dags):
    change_some_badges(emulator.state)  # creates organization events
    workforce = load_dag_module("xfer_badges").xfer_workforce
    dr = run_dag(workforce, run_conf={"destination": "duckdb_warehouse"})
    assert task_states(dr) == {"employees": "success", "events": "success"}
    with duckdb.connect(str(duckdb_conn), read_only=True) as con:
        employees = dict(con.execute("SELECT id, email FROM credly_employees").fetchall())
        events = dict(con.execute("SELECT id, event_type FROM credly_events").fetchall())
        checkpoints = con.execute(
            "SELECT transfer_key, status FROM credly_transfer_checkpoints ORDER BY 1"
        ).fetchall()
    assert employees == {e["id"]: e["email"] for e in emulator.state.employees}
    assert len(employees) == 120
    assert events == {e.id: e.event_type for e in emulator.state.events}
    assert len(events) == 4  # revoke, replace, two issues
    assert checkpoints == [
        ("xfer_workforce.employees:credly_employees", "done"),
        ("xfer_workforce.events:credly_events", "done"),
    ]


def _checkpoint(path, key="xfer_badges.load:credly_badges"):
    import json

    with duckdb.connect(str(path), read_only=True) as con:
        status, rows, newest, fingerprint = con.execute(
            "SELECT status, rows, max_updated_at, fingerprint FROM credly_transfer_checkpoints "
            "WHERE transfer_key = ?",
            [key],
        ).fetchone()
    request, _ = json.JSONDecoder().raw_decode(fingerprint)
    return status, rows, newest, request


def test_a_manual_run_without_data_interval_reads_only_the_changes(airflow_db, emulator, duckdb_conn, dags):
    """Airflow 3 manual runs have no data interval: the incremental bound comes from the last completed
    load of the same request (its newest updated_at minus the overlap), not "every badge"."""
    from datetime import timedelta

    from airflow_provider_credly.client.times import parse_timestamp

    state = emulator.state
    dr = run_dag(dags.xfer_badges, logical_date=None, run_conf={"mode": "incremental"})
    assert task_states(dr) == {"load": "success"}
    status, rows, first_newest, request = _checkpoint(duckdb_conn)
    assert (status, rows, request["bootstrap"]) == ("done", N_BADGES, True)  # first load: every badge
    before = _loaded_at(duckdb_conn)

    changed = change_some_badges(state)
    pages_before = state.request_count("GET", "badges.high_volume")
    dr = run_dag(dags.xfer_badges, logical_date=None, run_conf={"mode": "incremental"})
    assert task_states(dr) == {"load": "success"}
    status, rows, _, request = _checkpoint(duckdb_conn)
    since = (parse_timestamp(first_newest) - timedelta(days=1)).date().isoformat()
    assert (status, request["watermark"], request["watermark_filter"]) == ("done", since, "updated_at_min")
    assert f"updated_at_min::{since}" in request["filter"]

    # exactly the badges changed since the bound were fetched and written: one cursor page, not forty
    expected = expected_badges(state)
    recent = {i for i, b in expected.items() if b["updated_at"][:10] >= since}
    assert state.request_count("GET", "badges.high_volume") - pages_before == 1
    assert rows == len(recent) < PAGE
    after = _loaded_at(duckdb_conn)
    touched = {i for i in after if after[i] != before.get(i)}
    assert touched == recent
    assert {changed["revoked"], changed["replacement"], changed["new1"], changed["new2"]} <= touched
    # and the table is exact (the replaced badge left the cursor: incremental loads keep its last copy)
    table = _rows(duckdb_conn)
    assert_table_matches([r for r in table if r[0] != changed["replaced"]], expected)
