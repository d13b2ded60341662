"""Backfill every issued badge in parallel, balanced date partitions (dynamic task mapping).

A first task plans ``partitions`` created_at partitions holding about the same number of badges
(``plan_badge_partitions``: ``metadata.total_count`` probes of the badge search, a handful of cheap requests);
``CredlyBadgesToSqlOperator`` is mapped over them with ``.expand_kwargs()`` (each partition is a
``created_at_min``/``created_at_max`` filter on the high-volume cursor), so a Celery or Kubernetes executor
spreads the backfill evenly over its workers; calendar windows would give one worker the busy years. Each mapped task has its
own checkpoint (the key includes the map index) and upserts by id, so retrying one partition, or rerunning
the whole backfill, never duplicates. A final task prints the table's row counts.

DuckDB takes one writer process at a time, so against DuckDB the partitions run one after another
(``max_active_tis_per_dagrun=1`` and the one-slot ``duckdb_warehouse`` pool); point ``CREDLY_WAREHOUSE_CONN_ID`` at PostgreSQL to load them in parallel.

Settings: params ``start``, ``end`` (``YYYY-MM-DD``; empty: the organization's whole history, the last
partition open so badges created meanwhile land in it), ``partitions``; environment ``CREDLY_CONN_ID``,
``CREDLY_WAREHOUSE_CONN_ID`` (default ``duckdb_warehouse``), ``CREDLY_BACKFILL_TABLE`` (default
``credly_badges_backfill``).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgesToSqlOperator,
    table_counts,
    warehouse_alias,
)
from airflow_provider_credly.warehouse.slices import plan_badge_partitions

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
TABLE = os.environ.get("CREDLY_BACKFILL_TABLE", "credly_badges_backfill")
SINGLE_WRITER = "duckdb" in WAREHOUSE_CONN_ID
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if SINGLE_WRITER else "default_pool"


@dag(
    dag_id="credly_badges_backfill_partitioned",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # two runs at once would load the same partitions into the same table side by side: one at a time
    max_active_runs=1,
    params={"start": "", "end": "", "partitions": 3},
    tags=["credly", "example", "warehouse", "backfill"],
)
def credly_badges_backfill_partitioned() -> None:
    @task
    def partitions(params: dict[str, Any]) -> list[dict[str, str | None]]:
        client = CredlyHook(credly_conn_id=CREDLY_CONN_ID).client
        parts = plan_badge_partitions(
            client,
            since=params["start"] or None,
            until=params["end"] or None,
            partitions=int(params["partitions"]),
        )
        print(f"{len(parts)} balanced partitions: {parts}")
        return parts

    loads = CredlyBadgesToSqlOperator.partial(
        task_id="load_partition",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        mode="full",
        badge_format="minimal",
        retries=2,
        max_active_tis_per_dagrun=1 if SINGLE_WRITER else 8,
        pool=WAREHOUSE_POOL,
        outlets=[warehouse_alias(WAREHOUSE_CONN_ID, TABLE)],  # partial() needs them explicitly
    ).expand_kwargs(partitions())  # type: ignore[call-arg,misc]

    @task(pool=WAREHOUSE_POOL)
    def report() -> dict[str, Any]:
        counts = table_counts(WAREHOUSE_CONN_ID, TABLE)
        print(f"{counts['table']}: {counts['rows']} badges; by state: {counts['by_state']}")
        return counts

    loads >> report()


credly_badges_backfill_partitioned_dag = credly_badges_backfill_partitioned()
