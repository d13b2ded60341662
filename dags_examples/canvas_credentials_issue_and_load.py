"""Award a Canvas Credentials (Badgr) badge class to course completers, then load the issuer's assertions
into a warehouse table.

``CanvasCredentialsBulkIssueAssertionsOperator`` validates every row first and awards each exactly once
(``allowDuplicateAwards: false``; a "previous award exists" refusal resolves to the existing assertion), so
reruns are safe. ``CanvasCredentialsAssertionsToSqlOperator`` then upserts every assertion of the issuer,
revoked and expired ones included, into DuckDB (or any common.sql connection), resumably.

Settings are DAG params with defaults from environment variables: ``canvas_credentials_conn_id``
(``CANVAS_CREDENTIALS_CONN_ID``), ``warehouse_conn_id`` (``CANVAS_WAREHOUSE_CONN_ID``, default
``duckdb_warehouse``), ``issuer_id`` / ``badge_class_id`` (``CANVAS_ISSUER_ID`` / ``CANVAS_BADGE_CLASS_ID``;
empty = the account's first issuer and its first badge class, handy against the local emulator),
``recipients`` (e-mails; empty = ``demo_rows`` demo learners) and ``table``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.canvas_credentials import CanvasCredentialsBulkIssueAssertionsOperator
from airflow_provider_credly.transfers.canvas_credentials_to_sql import (
    CanvasCredentialsAssertionsToSqlOperator,
)

WAREHOUSE_CONN_ID = os.environ.get("CANVAS_WAREHOUSE_CONN_ID", "duckdb_warehouse")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in WAREHOUSE_CONN_ID else "default_pool"


def chosen(key: str) -> str:
    """A template reading ``key`` from the ``choose_badge_class`` task's result."""
    return "{{ ti.xcom_pull(task_ids='choose_badge_class')['" + key + "'] }}"


@dag(
    dag_id="canvas_credentials_issue_and_load",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "canvas_credentials_conn_id": os.environ.get(
            "CANVAS_CREDENTIALS_CONN_ID", "canvas_credentials_default"
        ),
        "warehouse_conn_id": WAREHOUSE_CONN_ID,
        "issuer_id": os.environ.get("CANVAS_ISSUER_ID", ""),
        "badge_class_id": os.environ.get("CANVAS_BADGE_CLASS_ID", ""),
        "recipients": [],
        "demo_rows": 25,
        "table": "canvas_assertions",
    },
    tags=["canvas-credentials", "example"],
)
def canvas_credentials_issue_and_load() -> None:
    @task
    def choose_badge_class() -> dict[str, str]:
        """The issuer and badge class to award (params, or the account's first ones)."""
        from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook

        params = get_current_context()["params"]
        issuer, badge_class = params["issuer_id"], params["badge_class_id"]
        if not (issuer and badge_class):
            client = CanvasCredentialsHook(params["canvas_credentials_conn_id"]).client
            issuer = issuer or client.list_issuers(include_staff=False)[0]["entityId"]
            badge_class = badge_class or client.list_badge_classes(issuer)[0]["entityId"]
        return {"issuer_id": issuer, "badge_class_id": badge_class}

    @task
    def completions() -> list[dict[str, Any]]:
        """One row per learner to award (small, so it travels by XCom; use ``sql=`` for big lists)."""
        params = get_current_context()["params"]
        emails = params["recipients"] or [
            f"canvas.learner{i:03d}@example.edu" for i in range(params["demo_rows"])
        ]
        return [{"recipient_email": e, "narrative": "Completed DATA-101"} for e in emails]

    target = choose_badge_class()
    award = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="award_badges",
        canvas_credentials_conn_id="{{ params.canvas_credentials_conn_id }}",
        rows=completions(),
        badge_class_id=chosen("badge_class_id"),
        workers=4,
        max_failures=0,
    )
    load = CanvasCredentialsAssertionsToSqlOperator(
        task_id="load_assertions",
        canvas_credentials_conn_id="{{ params.canvas_credentials_conn_id }}",
        issuer_id=chosen("issuer_id"),
        destination_conn_id="{{ params.warehouse_conn_id }}",
        table="{{ params.table }}",
        pool=WAREHOUSE_POOL,
    )
    target >> award >> load


canvas_credentials_issue_and_load()
