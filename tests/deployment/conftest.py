"""One real Airflow deployment for the deployment tests: a migrated PostgreSQL metadata DB and Airflow home,
the Credly and Canvas Credentials emulators, the example DAGs' connections. Each test starts the
components it needs; the ``airflow`` fixture stops them when the test ends, passed or failed.
"""

from __future__ import annotations

import os

import pytest

from airflow_provider_credly.testing.deployment import (
    AirflowDeployment,
    create_database,
    drop_database,
    example_connections,
)

DATABASE = f"airflow_credly_it_{os.getpid()}"  # per run: two checkouts never share one
WAREHOUSE_DATABASE = f"airflow_credly_it_wh_{os.getpid()}"


@pytest.fixture(scope="session")
def deployment(tmp_path_factory, postgres_available):
    """``(deployment, credly emulator, canvas emulator, warehouse path)``, migrated, nothing started."""
    from airflow_provider_credly.testing import EmulatorState, run_emulator
    from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator

    home = tmp_path_factory.mktemp("airflow-real")
    warehouse = home / "warehouse.duckdb"
    with (
        run_emulator(EmulatorState(seed=7, badges=400, employees=60)) as credly,
        run_canvas_emulator(CanvasState.seeded(assertions=40)) as canvas,
    ):
        canvas_info = {"url": canvas.base_url, "username": canvas.username, "password": canvas.password}
        dep = AirflowDeployment(
            home=home,
            database_url=create_database(DATABASE),
            connections=example_connections(
                credly.base_url, credly.token, credly.org_id, canvas_info, warehouse
            ),
            # the event-driven example's CredlyEventTrigger reads the events every second (default 60 s)
            env={"CREDLY_EVENTS_POLL_INTERVAL": "1"},
        )
        try:
            dep.migrate()
            yield dep, credly, canvas, warehouse
        finally:
            dep.stop()
            drop_database(DATABASE)
            drop_database(WAREHOUSE_DATABASE)


@pytest.fixture
def airflow(deployment):
    """The session's deployment; whatever a test started is stopped when it ends, passed or failed."""
    try:
        yield deployment
    finally:
        deployment[0].stop()
