"""Test DAG: one badge with ``if_exists="fail"`` and task retries (used by
tests/integration/test_issue_attribution.py)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from airflow_provider_credly.operators.badges import CredlyIssueBadgeOperator


@dag(
    dag_id="ops_issue_fail_retry",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"template": "", "email": "retry.fail@example.org"},
)
def ops_issue_fail_retry() -> None:
    CredlyIssueBadgeOperator(
        task_id="issue",
        recipient_email="{{ params.email }}",
        issued_to_first_name="Retry",
        issued_to_last_name="Fail",
        badge_template_id="{{ params.template }}",
        if_exists="fail",
        retries=2,
        retry_delay=timedelta(seconds=0),
    )


ops_issue_fail_retry()
