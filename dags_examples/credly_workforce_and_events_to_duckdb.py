"""Nightly copy of the Workforce employees, the organization's events and its badge templates into the
warehouse (templates: so bulk-issue rows can join on template names).

The loads use the same machinery as the badge transfer (bulk upsert by id, checkpoint in the destination,
bounded memory) over Credly's page-number endpoints; ``prune=True`` removes employees that left Credly.
Against DuckDB the loads take turns through the one-slot ``duckdb_warehouse`` pool (one writer per file).

Settings (environment): ``CREDLY_CONN_ID`` (default ``credly_default``), ``CREDLY_WAREHOUSE_CONN_ID``
(default ``duckdb_warehouse``).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgeTemplatesToSqlOperator,
    CredlyEmployeesToSqlOperator,
    CredlyEventsToSqlOperator,
    table_counts,
)

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in WAREHOUSE_CONN_ID else "default_pool"


@dag(
    dag_id="credly_workforce_and_events_to_duckdb",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["credly", "example", "transfer"],
)
def credly_workforce_and_events_to_duckdb() -> None:
    employees = CredlyEmployeesToSqlOperator(
        task_id="load_employees",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table="credly_employees",
        prune=True,
        pool=WAREHOUSE_POOL,
    )
    events = CredlyEventsToSqlOperator(
        task_id="load_events",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table="credly_events",
        pool=WAREHOUSE_POOL,
    )
    templates = CredlyBadgeTemplatesToSqlOperator(
        task_id="load_badge_templates",
        credly_conn_id=CREDLY_CONN_ID,
        destination_conn_id=WAREHOUSE_CONN_ID,
        table="credly_badge_templates",
        prune=True,
        pool=WAREHOUSE_POOL,
    )

    @task(pool=WAREHOUSE_POOL)
    def report() -> dict[str, Any]:
        staff = table_counts(WAREHOUSE_CONN_ID, "credly_employees", group_by="employee_state")
        log = table_counts(WAREHOUSE_CONN_ID, "credly_events", group_by="event_type")
        catalog = table_counts(WAREHOUSE_CONN_ID, "credly_badge_templates", group_by="state")
        print(f"credly_employees: {staff['rows']} rows {staff['by_employee_state']}")
        print(f"credly_events: {log['rows']} rows {log['by_event_type']}")
        print(f"credly_badge_templates: {catalog['rows']} rows {catalog['by_state']}")
        return {"employees": staff, "events": log, "badge_templates": catalog}

    [employees, events, templates] >> report()


credly_workforce_and_events_to_duckdb_dag = credly_workforce_and_events_to_duckdb()
