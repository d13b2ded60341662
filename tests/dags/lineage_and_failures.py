"""Test DAGs of tests/integration/test_lineage_and_failures.py: lineage of an issue, a revoke and a transfer
(OpenLineage events, the table's Asset event, extra links), and which errors Airflow retries."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_credly.operators.badges import (
    CredlyBulkIssueBadgesOperator,
    CredlyIssueBadgeOperator,
    CredlyRevokeBadgeOperator,
)
from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(
    "credly_lineage",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"template": "", "email": "lineage@example.edu"},
) as lineage_dag:
    issue = CredlyIssueBadgeOperator(
        task_id="issue",
        recipient_email="{{ params.email }}",
        issued_to_first_name="Line",
        issued_to_last_name="Age",
        badge_template_id="{{ params.template }}",
    )
    revoke = CredlyRevokeBadgeOperator(
        task_id="revoke",
        badge_ids="{{ ti.xcom_pull(task_ids='issue')['id'] }}",
        reason="lineage test",
    )
    # a literal connection id and table: the operator declares the table's Asset alias as its outlet
    load = CredlyBadgesToSqlOperator(
        task_id="load", destination_conn_id="duckdb_warehouse", table="credly_badges", batch_rows=500
    )
    issue >> revoke >> load


with DAG(
    "credly_fail_fast",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"template": "", "email": "fail.fast@example.edu"},
) as fail_fast_dag:
    # retries=2 each: a 401 or an invalid argument runs once; a 5xx is retried
    CredlyIssueBadgeOperator(
        task_id="issue",
        recipient_email="{{ params.email }}",
        issued_to_first_name="Fail",
        issued_to_last_name="Fast",
        badge_template_id="{{ params.template }}",
        retries=2,
        retry_delay=timedelta(0),
    )


with DAG(
    "credly_bulk_fail_fast",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"template": "", "rows": [], "badge_ids": [], "max_failures": 0},
) as bulk_fail_fast_dag:
    # retries=2 each: when every failed row met an error a retry cannot fix the task runs once
    CredlyBulkIssueBadgesOperator(
        task_id="bulk_issue",
        rows="{{ params.rows | tojson }}",
        defaults={"badge_template_id": "{{ params.template }}"},
        max_failures="{{ params.max_failures }}",
        workers=2,
        retries=2,
        retry_delay=timedelta(0),
    )
    CredlyRevokeBadgeOperator(
        task_id="bulk_revoke",
        badge_ids="{{ params.badge_ids | tojson }}",
        reason="fail-fast test",
        max_failures="{{ params.max_failures }}",
        workers=2,
        retries=2,
        retry_delay=timedelta(0),
    )
