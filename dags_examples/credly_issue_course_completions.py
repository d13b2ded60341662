"""Issue a Credly badge for every course completion in a SQL table, exactly once.

The completions come from any common.sql connection (DuckDB here; PostgreSQL, Snowflake... the same way);
``CredlyBulkIssueBadgesOperator`` validates every row first, issues with a few workers, resolves duplicates
and unknown outcomes to the existing badge, and writes one report row per completion.

Settings are DAG params (defaults from environment variables): ``credly_conn_id``, ``sql_conn_id``,
``source_table``, ``report_table``, ``badge_template_id`` and ``seed_demo_data`` (fill the source table with
demo learners first; the template is then taken from the organization's badges when not given).
"""

from __future__ import annotations

import os
from datetime import timedelta
from itertools import islice

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_credly.operators.badges import CredlyBulkIssueBadgesOperator

COLUMNS = (
    ("learner_email", "VARCHAR(320)"),
    ("first_name", "VARCHAR(100)"),
    ("last_name", "VARCHAR(100)"),
    ("learner_id", "VARCHAR(64)"),
    ("course_code", "VARCHAR(32)"),
    ("badge_template_id", "VARCHAR(64)"),
    ("completed_at", "TIMESTAMP"),
)
SQL_CONN_ID = os.environ.get("CREDLY_SQL_CONN_ID", "duckdb_warehouse")
# DuckDB takes one writing process per file: every task opening the file shares a one-slot pool (create it
# once: ``airflow pools set duckdb_warehouse 1 "DuckDB writer"``); other databases use the default pool.
WAREHOUSE_POOL = "duckdb_warehouse" if "duckdb" in SQL_CONN_ID else "default_pool"


@dag(
    dag_id="credly_issue_course_completions",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "credly_conn_id": os.environ.get("CREDLY_CONN_ID", "credly_default"),
        "sql_conn_id": SQL_CONN_ID,
        "source_table": "course_completions",
        "report_table": "credly_issue_report",
        "badge_template_id": os.environ.get("CREDLY_BADGE_TEMPLATE_ID", ""),
        "seed_demo_data": True,
        "demo_rows": 40,
    },
    tags=["credly", "example"],
)
def credly_issue_course_completions() -> None:
    @task(pool=WAREHOUSE_POOL)
    def seed_demo_data() -> int:
        """Create the completions table with demo learners (only when ``seed_demo_data``)."""
        params = get_current_context()["params"]
        if not params["seed_demo_data"]:
            return 0
        from airflow_provider_credly.hooks.credly import CredlyHook
        from airflow_provider_credly.hooks.sql import check_table_name, get_db_hook

        template = params["badge_template_id"]
        if not template:  # demo only: a template of the organization that refuses duplicate badges
            badges = CredlyHook(params["credly_conn_id"]).client.iter_badges(sort="-issued_at")
            candidates = [b["badge_template"] for b in islice(badges, 50)]
            template = next(
                (t["id"] for t in candidates if not t.get("allow_duplicate_badges")), candidates[0]["id"]
            )
        table = check_table_name(params["source_table"])
        hook = get_db_hook(params["sql_conn_id"])
        hook.run(f"DROP TABLE IF EXISTS {table}")
        hook.run(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in COLUMNS)})")
        start = pendulum.datetime(2026, 1, 5, 9, tz="UTC")
        rows = [
            (
                f"learner{i}@example.edu",
                f"Learner{i}",
                "Demo",
                f"L{i:05d}",
                "DATA-101",
                template,
                start.add(hours=i).naive(),
            )
            for i in range(int(params["demo_rows"]))
        ]
        hook.insert_rows(table, rows, target_fields=[n for n, _ in COLUMNS], executemany=True)
        print(f"Seeded {len(rows)} completions of template {template} into {table}")
        return len(rows)

    issue = CredlyBulkIssueBadgesOperator(
        task_id="issue_badges",
        credly_conn_id="{{ params.credly_conn_id }}",
        sql_conn_id="{{ params.sql_conn_id }}",
        sql="SELECT learner_email, first_name, last_name, learner_id, badge_template_id, completed_at "
        "FROM {{ params.source_table }} ORDER BY learner_id",
        column_mapping={
            "recipient_email": "learner_email",
            "issued_to_first_name": "first_name",
            "issued_to_last_name": "last_name",
            "issuer_earner_id": "learner_id",
            "badge_template_id": "badge_template_id",
            "issued_at": "completed_at",
        },
        defaults={"suppress_badge_notification_email": False, "locale": "en"},
        workers=4,
        max_failures=0,
        report_conn_id="{{ params.sql_conn_id }}",
        report_table="{{ params.report_table }}",
        pool=WAREHOUSE_POOL,
    )
    seed_demo_data() >> issue


credly_issue_course_completions()
