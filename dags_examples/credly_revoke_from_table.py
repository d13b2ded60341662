"""Revoke the badges listed in a SQL table (e.g. a compliance or refund list), each with its reason.

``CredlyRevokeBadgeOperator`` reads ``badge_id`` and ``reason`` from the query; badges already revoked count
as done, and a badge that was replaced is revoked in its current version (``follow_replacement=True``).

Settings are DAG params (defaults from environment variables): ``credly_conn_id``, ``sql_conn_id``,
``revocation_table`` and ``seed_demo_data`` (list a few of the organization's recent badges first, one of
them twice to show idempotency).
"""

from __future__ import annotations

import os
from itertools import islice

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.badges import CredlyRevokeBadgeOperator

SQL_CONN_ID = os.environ.get("CREDLY_SQL_CONN_ID", "duckdb_warehouse")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in SQL_CONN_ID else "default_pool"


@dag(
    dag_id="credly_revoke_from_table",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "credly_conn_id": os.environ.get("CREDLY_CONN_ID", "credly_default"),
        "sql_conn_id": SQL_CONN_ID,
        "revocation_table": "badges_to_revoke",
        "seed_demo_data": True,
        "demo_rows": 5,
    },
    tags=["credly", "example"],
)
def credly_revoke_from_table() -> None:
    @task(pool=WAREHOUSE_POOL)
    def seed_demo_data() -> int:
        """List a few active badges to revoke (only when ``seed_demo_data``)."""
        params = get_current_context()["params"]
        if not params["seed_demo_data"]:
            return 0
        from airflow_provider_credly.hooks.credly import CredlyHook
        from airflow_provider_credly.hooks.sql import check_table_name, get_db_hook

        client = CredlyHook(params["credly_conn_id"]).client
        active = client.iter_badges({"state": ["pending", "accepted"]}, sort="-issued_at")
        ids = [b["id"] for b in islice(active, int(params["demo_rows"]))]
        rows = [(badge_id, "Course certification withdrawn") for badge_id in ids]
        rows.append((ids[0], "Listed twice: the second revocation is a no-op"))
        table = check_table_name(params["revocation_table"])
        hook = get_db_hook(params["sql_conn_id"])
        hook.run(f"DROP TABLE IF EXISTS {table}")
        hook.run(f"CREATE TABLE {table} (badge_id VARCHAR(64), reason VARCHAR(500))")
        hook.insert_rows(table, rows, target_fields=["badge_id", "reason"], executemany=True)
        print(f"Listed {len(rows)} badge(s) to revoke in {table}")
        return len(rows)

    revoke = CredlyRevokeBadgeOperator(
        task_id="revoke_badges",
        credly_conn_id="{{ params.credly_conn_id }}",
        sql_conn_id="{{ params.sql_conn_id }}",
        sql="SELECT badge_id, reason FROM {{ params.revocation_table }}",
        suppress_revoke_notification_email=True,
        follow_replacement=True,
        workers=1,
        pool=WAREHOUSE_POOL,
    )
    seed_demo_data() >> revoke


credly_revoke_from_table()
