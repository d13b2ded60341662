"""The Canvas Credentials example DAG end to end with ``dag.test()``: emulator over HTTP, real DuckDB."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from tests.conftest import ROOT
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration

NAME = "canvas_credentials_issue_and_load"


def load_dag() -> Any:
    return getattr(load_module(ROOT / "dags_examples" / f"{NAME}.py", f"dags_examples.{NAME}"), NAME)()


def xcom(dag_run: Any, task_id: str) -> Any:
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id)


def test_issue_and_load_example_dag(airflow_db, canvas_conn, duckdb_conn) -> None:
    state = canvas_conn.state
    dag = load_dag()
    dr = run_dag(dag)
    assert task_states(dr) == {
        "choose_badge_class": "success",
        "completions": "success",
        "award_badges": "success",
        "load_assertions": "success",
    }
    award = xcom(dr, "award_badges")
    assert (award["issued"], award["already_existed"], award["failed"]) == (25, 0, 0)
    bc = state.badge_class_ids[0]
    assert state.count_assertions(badgeclass=bc, recipient_email="canvas.learner000@example.edu") == 1
    load = xcom(dr, "load_assertions")
    assert load["rows"] == len(state.assertions) == 45  # 20 seeded (revoked/expired included) + 25 awarded
    with duckdb.connect(str(duckdb_conn), read_only=True) as db:
        count, revoked = db.execute(
            "select count(*), count(*) filter (where revoked) from canvas_assertions"
        ).fetchone()
    assert count == 45
    assert revoked == state.count_assertions(revoked=True) > 0

    dr2 = run_dag(dag)  # a rerun awards nothing twice
    again = xcom(dr2, "award_badges")
    assert (again["issued"], again["already_existed"]) == (0, 25)
    assert [r[2] for r in again["rows"]] == [r[2] for r in award["rows"]]
    assert len(state.assertions) == 45
