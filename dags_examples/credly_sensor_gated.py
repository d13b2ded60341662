"""Refresh the warehouse only when Credly has badge activity: a deferrable sensor gates the load.

``CredlyBadgeSensor`` (``deferrable=True``: it waits in the triggerer, not in a worker slot) waits until
badges matching a filter changed since a time (here: badges issued or accepted in the
``CREDLY_SENSOR_LOOKBACK_HOURS`` hours before the run, default 24). Its XCom (count and ids) feeds a report;
then an incremental load of the badges changed in that window brings the warehouse up to date and a final
task prints row counts. With ``soft_fail=True`` a quiet period skips the run instead of failing it.

The window is counted back from ``dag_run.run_after``, which every run has (scheduled, manual and
asset-triggered; manual runs have no ``data_interval_start`` in Airflow 3). Against the local emulator the
sensor defers until a badge is issued there, e.g. by the ``credly_issue_course_completions`` example.

Settings (environment): ``CREDLY_CONN_ID``, ``CREDLY_WAREHOUSE_CONN_ID`` (default ``duckdb_warehouse``),
``CREDLY_BADGES_TABLE`` (default ``credly_badges``), ``CREDLY_SENSOR_LOOKBACK_HOURS``,
``CREDLY_SENSOR_STATES`` (comma list, default ``pending,accepted``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.sensors.badges import CredlyBadgeSensor
from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator, table_counts

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
TABLE = os.environ.get("CREDLY_BADGES_TABLE", "credly_badges")
LOOKBACK_HOURS = int(os.environ.get("CREDLY_SENSOR_LOOKBACK_HOURS", "24"))
STATES = os.environ.get("CREDLY_SENSOR_STATES", "pending,accepted").split(",")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in WAREHOUSE_CONN_ID else "default_pool"
# Start of the window; dag_run.run_after exists on every kind of run (data_interval_start does not).
WINDOW_START = f"dag_run.run_after - macros.timedelta(hours={LOOKBACK_HOURS})"


@dag(
    dag_id="credly_sensor_gated",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["credly", "example", "sensor"],
)
def credly_sensor_gated() -> None:
    wait = CredlyBadgeSensor(
        task_id="wait_for_accepted_badges",
        credly_conn_id=CREDLY_CONN_ID,
        filters={"state": STATES},
        changed_since="{{ " + WINDOW_START + " }}",
        min_count=1,
        max_results=20,
        deferrable=True,
        poke_interval=30,
        timeout=timedelta(minutes=50).total_seconds(),
        soft_fail=True,
    )

    @task
    def announce(found: dict[str, Any]) -> int:
        print(f"{found['count']} badge(s) in states {STATES} changed recently, e.g. {found['ids'][:5]}")
        return int(found["count"])

    load = CredlyBadgesToSqlOperator(
        task_id="load_changed_badges",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        mode="incremental",
        watermark="{{ (" + WINDOW_START + ").strftime('%Y-%m-%d') }}",
        pool=WAREHOUSE_POOL,
    )

    @task(pool=WAREHOUSE_POOL)
    def report() -> dict[str, Any]:
        counts = table_counts(WAREHOUSE_CONN_ID, TABLE)
        print(f"{counts['table']}: {counts['rows']} badges; by state: {counts['by_state']}")
        return counts

    announced = announce(wait.output)  # type: ignore[arg-type]
    announced >> load >> report()


credly_sensor_gated_dag = credly_sensor_gated()
