"""A badges transfer whose emulator starts answering malformed pages after some committed pages
(tests/integration/test_malformed_faults.py)."""

from __future__ import annotations

import os
import urllib.request

import pendulum
from airflow.sdk import DAG

from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator


class BreakingBadgesToSql(CredlyBadgesToSqlOperator):
    """After ``CREDLY_TEST_BREAK_AFTER_PAGES`` committed pages, switches the emulator (admin URL
    ``CREDLY_TEST_EMULATOR_FAULTS``) to the fault knobs of ``CREDLY_TEST_BREAK_FAULTS`` (JSON)."""

    def after_batch_committed(self, checkpoint):
        limit = int(os.environ.get("CREDLY_TEST_BREAK_AFTER_PAGES") or 0)
        admin = os.environ.get("CREDLY_TEST_EMULATOR_FAULTS")
        if limit and admin and checkpoint.pages >= limit:
            faults = os.environ.get("CREDLY_TEST_BREAK_FAULTS") or "{}"
            req = urllib.request.Request(admin, data=faults.encode(), method="POST")
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=10):
                pass


with DAG(
    "xfer_malformed",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"badge_format": "minimal"},
) as xfer_malformed:
    BreakingBadgesToSql(
        task_id="load",
        destination_conn_id="duckdb_warehouse",
        table="credly_badges",
        mode="full",
        badge_format="{{ params.badge_format }}",
        batch_rows=2000,
        page_queue_size=2,
        parallel_cursors=1,  # pages counted on the single cursor
        retries=0,
    )

__all__ = ["xfer_malformed"]
