"""CredlyEventTrigger in a real triggerer: an emulator event makes the scheduler run the event-driven example.

PostgreSQL metadata DB, api-server, scheduler, dag-processor and triggerer as separate processes (the
project's :class:`AirflowDeployment`), the DAG folder holding only ``credly_event_driven.py``.
"""

from __future__ import annotations

import os
import shutil
import time

import duckdb
import pytest

from airflow_provider_credly.testing.deployment import (
    DUCKDB_POOL,
    EXAMPLES,
    AirflowDeployment,
    create_database,
    drop_database,
)

pytestmark = [pytest.mark.deployment, pytest.mark.integration, pytest.mark.timeout(420)]

DAG_ID = "credly_event_driven"
DATABASE = f"airflow_credly_events_it_{os.getpid()}"  # per run: two checkouts never share one


def _wait(what: str, check, dep: AirflowDeployment, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.5)


def test_an_emulator_event_creates_a_successful_asset_triggered_run(tmp_path, postgres_available, request):
    from airflow_provider_credly.testing import EmulatorState, run_emulator

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLES / f"{DAG_ID}.py", dags)
    warehouse = tmp_path / "warehouse.duckdb"
    with run_emulator(EmulatorState(seed=11, badges=20, employees=5)) as credly:
        connections = {
            "credly_default": {
                "conn_type": "credly",
                "host": credly.base_url,
                "password": credly.token,
                "extra": {"organization_id": credly.org_id, "backoff_base": 0.05, "backoff_max": 1},
            },
            "duckdb_warehouse": {"conn_type": "duckdb", "host": str(warehouse)},
        }
        dep = AirflowDeployment(
            home=tmp_path / "home",
            database_url=create_database(DATABASE),
            connections=connections,
            env={"CREDLY_EVENTS_POLL_INTERVAL": "1"},
            dags_folder=dags,
        )
        with dep:  # stops every process group it started, also on failure
            request.addfinalizer(lambda: drop_database(DATABASE))  # after the processes using it stopped
            dep.migrate()
            dep.start_core()
            api = dep.api()
            api.set_pool(DUCKDB_POOL, 1, "one writer at a time per DuckDB file")
            dep.wait_for_dags(api, [DAG_ID])
            api.unpause(DAG_ID)
            # two reads of the events list: the trigger's first read (its baseline) is over
            _wait(
                "the triggerer polling Credly events",
                lambda: credly.state.request_count("GET", "events.list") >= 2,
                dep,
            )
            assert api.dag_runs(DAG_ID) == []
            badge = credly.state.issue_badge(
                badge_template_id=credly.state.templates[0].id,
                recipient_email="watched.earner@example.org",
                issued_to_first_name="Wanda",
                issued_to_last_name="Watcher",
                issued_at="2026-11-20 10:00:00 +0000",
            )
            (event,) = credly.state.events
            runs = api.wait_for_runs([DAG_ID], timeout=120, on_poll=dep.check_alive)[DAG_ID]
            assert [r["state"] for r in runs] == ["success"], runs
            assert runs[0]["run_type"] == "asset_triggered"
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute("select event_id, event_type, badge_id from credly_badge_event_log").fetchall()
        assert rows == [(event.id, "badge.created", badge["id"])]
