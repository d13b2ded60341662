"""Backfill every issued badge in parallel date partitions (dynamic task mapping).

A first task splits ``[start, end]`` into ``partition_days``-day windows; ``CredlyBadgesToSqlOperator`` is
mapped over them with ``.expand_kwargs()`` (each window is a ``created_at_min``/``created_at_max`` filter on
the high-volume cursor), so a Celery or Kubernetes executor loads them in parallel. Each mapped task has its
own checkpoint (the key includes the map index) and upserts by id, so retrying one partition, or rerunning
the whole backfill, never duplicates. A final task prints the table's row counts.

DuckDB takes one writer process at a time, so against DuckDB the partitions run one after another
(``max_active_tis_per_dagrun=1``); point ``CREDLY_WAREHOUSE_CONN_ID`` at PostgreSQL to load them in parallel.

Settings: params ``start``, ``end`` (``YYYY-MM-DD``), ``partition_days``; environment ``CREDLY_CONN_ID``,
``CREDLY_WAREHOUSE_CONN_ID`` (default ``duckdb_warehouse``), ``CREDLY_BACKFILL_TABLE`` (default
``credly_badges_backfill``).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgesToSqlOperator,
    table_counts,
    warehouse_asset,
)

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
TABLE = os.environ.get("CREDLY_BACKFILL_TABLE", "credly_badges_backfill")
SINGLE_WRITER = "duckdb" in WAREHOUSE_CONN_ID


def date_partitions(start: str, end: str, days: int) -> list[dict[str, str]]:
    """``[{"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}, ...]`` covering ``start..end`` (inclusive days)."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if days < 1 or last < first:
        raise ValueError(f"need partition_days >= 1 and start <= end, got {days}, {start}..{end}")
    out = []
    while first <= last:
        until = min(first + timedelta(days=days - 1), last)
        out.append({"since": first.isoformat(), "until": until.isoformat()})
        first = until + timedelta(days=1)
    return out


@dag(
    dag_id="credly_badges_backfill_partitioned",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"start": "2023-12-01", "end": "2026-12-31", "partition_days": 180},
    tags=["credly", "example", "warehouse", "backfill"],
)
def credly_badges_backfill_partitioned() -> None:
    @task
    def partitions(params: dict[str, Any]) -> list[dict[str, str]]:
        parts = date_partitions(str(params["start"]), str(params["end"]), int(params["partition_days"]))
        print(f"{len(parts)} partitions: {parts[0]} .. {parts[-1]}")
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
        outlets=[warehouse_asset(WAREHOUSE_CONN_ID, TABLE)],  # partial() needs them explicitly
    ).expand_kwargs(partitions())  # type: ignore[call-arg]

    @task
    def report() -> dict[str, Any]:
        counts = table_counts(WAREHOUSE_CONN_ID, TABLE)
        print(f"{counts['table']}: {counts['rows']} badges; by state: {counts['by_state']}")
        return counts

    loads >> report()


credly_badges_backfill_partitioned_dag = credly_badges_backfill_partitioned()
