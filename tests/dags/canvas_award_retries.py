"""Test DAG: bulk Canvas Credentials award of ``params.rows`` rows with task retries
(used by tests/integration/canvas/test_canvas_task_retries.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.canvas_credentials import CanvasCredentialsBulkIssueAssertionsOperator


@dag(
    dag_id="canvas_award_retries",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"rows": 300, "badge_class_id": ""},
)
def canvas_award_retries() -> None:
    @task
    def make_rows() -> list[dict[str, Any]]:
        n = int(get_current_context()["params"]["rows"])
        return [{"recipient_email": f"retry{i:04d}@example.org"} for i in range(n)]

    CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="award",
        rows=make_rows(),
        badge_class_id="{{ params.badge_class_id }}",
        workers=4,
        max_failures=0,
        retries=4,
        retry_delay=timedelta(seconds=0),
        max_xcom_rows=1000,
    )


canvas_award_retries()
