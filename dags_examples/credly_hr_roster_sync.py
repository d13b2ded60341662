"""Nightly HR roster sync: make Credly Workforce employees match the HR system's roster table.

A dry run logs the plan first (creates, changed-field updates, deletes, invitations); the sync then applies
it. Employees missing from the roster are deleted, guarded by ``max_delete_fraction`` (a truncated roster
stops the sync before any write). New employees get an invitation.

Settings are DAG params (defaults from environment variables): ``credly_conn_id``, ``sql_conn_id``,
``roster_table`` and ``seed_demo_data`` (derive a demo roster from the current employees first: a few
leavers, a few team changes, a few new hires; each run hires new people, so the example can run again).
"""

from __future__ import annotations

import os
from datetime import timedelta
from itertools import islice
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator

COLUMNS = (
    ("employee_number", "VARCHAR(64)"),
    ("work_email", "VARCHAR(320)"),
    ("given_name", "VARCHAR(100)"),
    ("family_name", "VARCHAR(100)"),
    ("team", "VARCHAR(100)"),
    ("department", "VARCHAR(100)"),
)
ROSTER_SQL = (
    "SELECT employee_number, work_email, given_name, family_name, team, department "
    "FROM {{ params.roster_table }}"
)
MAPPING = {
    "external_id": "employee_number",
    "email": "work_email",
    "first_name": "given_name",
    "last_name": "family_name",
    "team": "team",
    "department": "department",
}
SQL_CONN_ID = os.environ.get("CREDLY_SQL_CONN_ID", "duckdb_warehouse")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in SQL_CONN_ID else "default_pool"


@dag(
    dag_id="credly_hr_roster_sync",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    params={
        "credly_conn_id": os.environ.get("CREDLY_CONN_ID", "credly_default"),
        "sql_conn_id": SQL_CONN_ID,
        "roster_table": "hr_roster",
        "seed_demo_data": True,
    },
    tags=["credly", "example"],
)
def credly_hr_roster_sync() -> None:
    @task(pool=WAREHOUSE_POOL)
    def seed_demo_data() -> int:
        """Write a demo roster derived from the current employees (only when ``seed_demo_data``)."""
        params = get_current_context()["params"]
        if not params["seed_demo_data"]:
            return 0
        from airflow_provider_credly.hooks.credly import CredlyHook
        from airflow_provider_credly.hooks.sql import check_table_name, get_db_hook

        rows = []
        for i, emp in enumerate(
            CredlyHook(params["credly_conn_id"]).client.iter_employees(sort="created_at")
        ):
            if i % 40 == 39:  # a leaver
                continue
            team = "Platform" if i % 10 == 3 else emp.get("team")  # a team change
            number = emp.get("external_id") or f"HR-{i:05d}"
            rows.append(
                (number, emp["email"], emp["first_name"], emp["last_name"], team, emp.get("department"))
            )
        # Five new hires under the next free numbers, so every run (not only the first) adds new people.
        taken = {row[0] for row in rows}
        numbers = (i for i in range(len(rows) + 6) if f"NEW-{i}" not in taken)
        rows += [
            (f"NEW-{i}", f"new.hire{i}@example.com", f"New{i}", "Hire", "Data", "Engineering")
            for i in islice(numbers, 5)
        ]
        table = check_table_name(params["roster_table"])
        hook = get_db_hook(params["sql_conn_id"])
        hook.run(f"DROP TABLE IF EXISTS {table}")
        hook.run(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in COLUMNS)})")
        hook.insert_rows(table, rows, target_fields=[n for n, _ in COLUMNS], executemany=True)
        print(f"Seeded a roster of {len(rows)} employees into {table}")
        return len(rows)

    common: dict[str, Any] = {
        "credly_conn_id": "{{ params.credly_conn_id }}",
        "sql_conn_id": "{{ params.sql_conn_id }}",
        "sql": ROSTER_SQL,
        "column_mapping": MAPPING,
        "key": "external_id",
        "delete_missing": True,
        "max_delete_fraction": 0.1,
        "invite_states": ["created"],
        "pool": WAREHOUSE_POOL,
    }
    preview = CredlyEmployeeSyncOperator(task_id="preview_plan", dry_run=True, **common)
    sync = CredlyEmployeeSyncOperator(task_id="sync_employees", workers=4, **common)
    seed_demo_data() >> preview >> sync


credly_hr_roster_sync()
