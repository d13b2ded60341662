"""Hourly incremental load of every issued Credly badge into a DuckDB warehouse table.

``CredlyBadgesToSqlOperator`` reads the high-volume cursor with ``updated_at_min`` = the run's interval start
minus ``overlap`` (the filter is a date), upserts by id (reruns and overlaps never duplicate), commits a
checkpoint with every batch (a retry resumes after the last committed page) and declares the table as an
Asset. The very first run loads everything (``bootstrap_full``). A final task prints the table's row counts.

Settings (environment, read when the DAG is parsed): ``CREDLY_CONN_ID`` (default ``credly_default``),
``CREDLY_WAREHOUSE_CONN_ID`` (default ``duckdb_warehouse``: a DuckDB connection whose host is the database
file), ``CREDLY_BADGES_TABLE`` (default ``credly_badges``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator, table_counts

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
TABLE = os.environ.get("CREDLY_BADGES_TABLE", "credly_badges")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in WAREHOUSE_CONN_ID else "default_pool"


@dag(
    dag_id="credly_badges_hourly_to_duckdb",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one writer at a time: DuckDB files take a single writer process
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["credly", "example", "warehouse"],
)
def credly_badges_hourly_to_duckdb() -> None:
    load = CredlyBadgesToSqlOperator(
        task_id="load_badges",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        mode="incremental",
        overlap=timedelta(days=1),
        badge_format="default",
        pool=WAREHOUSE_POOL,
    )

    @task(pool=WAREHOUSE_POOL)
    def report() -> dict[str, Any]:
        counts = table_counts(WAREHOUSE_CONN_ID, TABLE)
        print(f"{counts['table']}: {counts['rows']} badges; by state: {counts['by_state']}")
        return counts

    load >> report()


credly_badges_hourly_to_duckdb_dag = credly_badges_hourly_to_duckdb()
