"""Test DAG: bulk issue of ``params.rows`` badges with task retries (used by tests/integration/test_exactly_once.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.badges import CredlyBulkIssueBadgesOperator


@dag(
    dag_id="ops_exactly_once",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"rows": 1000, "template": "", "workers": 4},
)
def ops_exactly_once() -> None:
    @task
    def make_rows() -> list[dict[str, Any]]:
        n = int(get_current_context()["params"]["rows"])
        return [
            {"email": f"eo{i}@example.org", "first": f"Eo{i}", "last": "Once", "learner": f"EO{i:05d}"}
            for i in range(n)
        ]

    CredlyBulkIssueBadgesOperator(
        task_id="issue",
        rows=make_rows(),
        column_mapping={
            "recipient_email": "email",
            "issued_to_first_name": "first",
            "issued_to_last_name": "last",
            "issuer_earner_id": "learner",
        },
        defaults={"badge_template_id": "{{ params.template }}"},
        workers=4,
        max_failures=0,
        retries=4,
        retry_delay=timedelta(seconds=0),
        max_xcom_rows=2000,
    )


ops_exactly_once()
