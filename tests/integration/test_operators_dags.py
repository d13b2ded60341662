"""The example DAGs end to end with ``dag.test()``: real HTTP to the emulator, real DuckDB/PostgreSQL tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import ROOT, connect_credly
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration


def load_dag(name: str) -> Any:
    path = ROOT / "dags_examples" / f"{name}.py"
    return getattr(load_module(path, f"dags_examples.{name}"), name)()


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id, key=key)


def test_issue_course_completions_from_duckdb(airflow_db, credly_conn, duckdb_conn: Path) -> None:
    dag = load_dag("credly_issue_course_completions")
    before = credly_conn.state.badges_count()
    dr = run_dag(dag)
    assert task_states(dr) == {"seed_demo_data": "success", "issue_badges": "success"}
    result = xcom(dr, "issue_badges")
    assert (result["issued"], result["already_existed"], result["failed"], result["total"]) == (40, 0, 0, 40)
    assert credly_conn.state.badges_count() == before + 40
    badge = credly_conn.state.get_badge(result["rows"][0][2])
    assert badge["recipient_email"] == "learner0@example.edu"
    assert badge["issuer_earner_id"] == "L00000"
    assert badge["issued_at"].startswith("2026-01-05T09:00:00")

    # A second run re-reads the same completions: Credly refuses the duplicates, each resolves to its badge.
    dr2 = run_dag(dag)
    again = xcom(dr2, "issue_badges")
    assert (again["issued"], again["already_existed"]) == (0, 40)
    assert [r[2] for r in again["rows"]] == [r[2] for r in result["rows"]]
    assert credly_conn.state.badges_count() == before + 40
    con = duckdb.connect(str(duckdb_conn), read_only=True)
    try:
        report = con.execute(
            "select outcome, count(*) from credly_issue_report group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    assert report == [("already_existed", 40), ("issued", 40)]


@pytest.mark.postgres
def test_issue_course_completions_from_postgres(airflow_db, credly_conn, postgres_conn: str) -> None:
    dag = load_dag("credly_issue_course_completions")
    dr = run_dag(dag, run_conf={"sql_conn_id": "postgres_warehouse", "demo_rows": 10})
    assert task_states(dr)["issue_badges"] == "success"
    assert xcom(dr, "issue_badges")["issued"] == 10
    from airflow_provider_credly.hooks.sql import get_db_hook

    rows = get_db_hook("postgres_warehouse").get_records(
        "select outcome, count(*) from credly_issue_report group by 1"
    )
    assert [tuple(r) for r in rows] == [("issued", 10)]


def test_hr_roster_sync(airflow_db, credly_emulator_factory, duckdb_conn: Path, monkeypatch) -> None:
    emulator = credly_emulator_factory(badges=50, employees=100)
    connect_credly(monkeypatch, emulator)
    dr = run_dag(load_dag("credly_hr_roster_sync"))
    assert task_states(dr) == {
        "seed_demo_data": "success",
        "preview_plan": "success",
        "sync_employees": "success",
    }
    preview, result = xcom(dr, "preview_plan"), xcom(dr, "sync_employees")
    assert preview["dry_run"] is True
    assert preview["plan"]["create"] == 5
    assert preview["plan"]["delete"] == 2
    assert preview["created"]["count"] == 0
    assert result["plan"] == {**preview["plan"], "existing": 100}
    assert result["created"]["count"] == 5
    assert result["deleted"]["count"] == 2
    assert result["updated"]["count"] == result["plan"]["update"] > 0
    created_before = sum(1 for e in emulator.state.employees if e["employee_state"] == "created")
    assert created_before == 0  # every "created" employee (5 new + the existing ones) was invited
    assert result["invited"]["count"] == result["plan"]["invite"] > 5
    employees = {e["email"]: e for e in emulator.state.employees}
    assert sum(e["team"] == "Platform" for e in employees.values()) >= 10  # the demo's team changes
    assert len(employees) == 103
    assert employees["new.hire0@example.com"]["employee_state"] == "pending"
    assert employees["new.hire0@example.com"]["external_id"] == "NEW-0"


def test_revoke_from_table(airflow_db, credly_conn, duckdb_conn: Path) -> None:
    dr = run_dag(load_dag("credly_revoke_from_table"))
    assert task_states(dr) == {"seed_demo_data": "success", "revoke_badges": "success"}
    result = xcom(dr, "revoke_badges")
    assert result["counts"] == {"revoked": 5, "already_revoked": 1}
    for item in result["results"]:
        assert credly_conn.state.get_badge(item["badge_id"])["state"] == "revoked"
