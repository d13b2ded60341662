"""Transfer DAGs run by tests/integration/test_transfer_*.py (settings come from the run's conf/params)."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgesToSqlOperator,
    CredlyEmployeesToSqlOperator,
    CredlyEventsToSqlOperator,
)


class KillableBadgesToSql(CredlyBadgesToSqlOperator):
    """Dies once after ``CREDLY_TEST_KILL_AFTER_PAGES`` committed pages (marker file: first attempt only)."""

    def after_batch_committed(self, checkpoint):
        limit = int(os.environ.get("CREDLY_TEST_KILL_AFTER_PAGES") or 0)
        marker = os.environ.get("CREDLY_TEST_KILL_MARKER")
        if limit and marker and checkpoint.pages >= limit and not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write(str(checkpoint.pages))
            raise RuntimeError(f"injected kill after page {checkpoint.pages}")


PARAMS = {
    "destination": "duckdb_warehouse",
    "table": "credly_badges",
    "mode": "full",
    "badge_format": "default",
    "parallel_cursors": 1,  # the single cursor; tests of the sliced load pass 4
    "raw_json_type": "jsonb",
}


def _badges_dag(dag_id: str, *, prune: bool) -> DAG:
    with DAG(
        dag_id,
        schedule="@daily",
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
    ) as dag:
        KillableBadgesToSql(
            task_id="load",
            destination_conn_id="{{ params.destination }}",
            table="{{ params.table }}",
            mode="{{ params.mode }}",
            badge_format="{{ params.badge_format }}",
            parallel_cursors="{{ params.parallel_cursors }}",
            raw_json_type="{{ params.raw_json_type }}",
            prune=prune,
            batch_rows=2000,
            page_queue_size=3,
            retries=1,
            retry_delay=timedelta(0),
        )
    return dag


xfer_badges = _badges_dag("xfer_badges", prune=False)
xfer_badges_prune = _badges_dag("xfer_badges_prune", prune=True)

with DAG(
    "xfer_workforce",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"destination": "duckdb_warehouse"},
) as xfer_workforce:
    CredlyEmployeesToSqlOperator(
        task_id="employees",
        destination_conn_id="{{ params.destination }}",
        table="credly_employees",
        prune=True,
    )
    CredlyEventsToSqlOperator(
        task_id="events", destination_conn_id="{{ params.destination }}", table="credly_events"
    )
