"""CredlyBadgesToSqlOperator into the real PostgreSQL through dag.test(), over real HTTP to the emulator.

The ``postgres_conn`` fixture gives connection ``postgres_warehouse`` a fresh schema through the
``options=-c search_path=<schema>`` extra, which PostgresHook passes to psycopg: the tests check the tables
really land in that schema.
"""

from __future__ import annotations

import pendulum
import psycopg
import pytest

from tests.conftest import POSTGRES_DSN
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

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

CONF = {"destination": "postgres_warehouse"}


@pytest.fixture
def dags():
    return load_dag_module("xfer_badges")


def _query(schema, sql):
    with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}") as conn:
        return conn.execute(sql).fetchall()


def _rows(schema):
    return _query(schema, f"SELECT {badge_select().replace('VARCHAR', 'TEXT')} FROM credly_badges")


def _snapshot(schema):
    return _query(schema, "SELECT id, md5(raw::text), state, _loaded_at FROM credly_badges ORDER BY id")


def _run(dag, **conf):
    return run_dag(dag, logical_date=pendulum.now("UTC"), run_conf={**CONF, **conf})


@pytest.mark.parametrize("raw_json_type", ["jsonb", "json"])
def test_full_incremental_and_noop_rerun(airflow_db, emulator, postgres_conn, dags, raw_json_type):
    schema = postgres_conn
    dr = _run(dags.xfer_badges, raw_json_type=raw_json_type)
    assert task_states(dr) == {"load": "success"}
    # the table was created in the fixture's schema, not in public, with raw of the type asked for
    tables = _query(
        schema,
        "SELECT c.table_schema, c.data_type FROM information_schema.columns c"
        " WHERE c.table_name = 'credly_badges' AND c.column_name = 'raw'",
    )
    assert (schema, raw_json_type) in tables
    rows = _rows(schema)
    assert len(rows) == N_BADGES
    assert_table_matches(rows, expected_badges(emulator.state))

    before = {r[0]: r for r in _snapshot(schema)}
    changed = change_some_badges(emulator.state)
    dr = _run(dags.xfer_badges, mode="incremental", raw_json_type=raw_json_type)
    assert task_states(dr) == {"load": "success"}
    after = {r[0]: r for r in _snapshot(schema)}
    touched = {i for i in after if after[i] != before.get(i)}
    assert touched == {changed["revoked"], changed["replacement"], changed["new1"], changed["new2"]}
    rows = _rows(schema)
    assert_table_matches([r for r in rows if r[0] != changed["replaced"]], expected_badges(emulator.state))

    # rerunning the same interval changes nothing but the load stamps of the rows it rewrites
    dr = _run(dags.xfer_badges, mode="incremental", raw_json_type=raw_json_type)
    assert task_states(dr) == {"load": "success"}
    again = {r[0]: r[:3] for r in _snapshot(schema)}
    assert again == {k: v[:3] for k, v in after.items()}


def test_kill_and_faults_then_retry_is_exact(
    airflow_db, emulator, postgres_conn, dags, tmp_path, monkeypatch
):
    schema = postgres_conn
    marker = tmp_path / "killed"
    monkeypatch.setenv("CREDLY_TEST_KILL_AFTER_PAGES", "12")
    monkeypatch.setenv("CREDLY_TEST_KILL_MARKER", str(marker))
    emulator.set_faults(error_rate=0.05, drop_rate=0.05, rate_limit=40, rate_limit_burst=4, seed=5)
    dr = _run(dags.xfer_badges_prune, badge_format="minimal")
    emulator.clear_faults()
    assert marker.exists(), "the injected kill did not happen"
    assert task_states(dr) == {"load": "success"}
    assert dr.get_task_instance("load").try_number == 2
    status = _query(schema, "SELECT status, pages, rows FROM credly_transfer_checkpoints")
    assert status == [("done", N_BADGES // PAGE, N_BADGES)]
    counts = _query(
        schema, "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT _load_id) FROM credly_badges"
    )
    assert counts == [(N_BADGES, N_BADGES, 1)]
    assert_table_matches(_rows(schema), expected_badges(emulator.state, "minimal"))
