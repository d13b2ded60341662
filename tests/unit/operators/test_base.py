"""The shared operator plumbing: Airflow's ``default_args`` reach every layer of the operator classes, typed
template fields are converted where Airflow renders them (plain and mapped tasks), one failure-threshold step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.operators.badges import (
    CredlyBulkIssueBadgesOperator,
    CredlyIssueBadgeOperator,
    CredlyRevokeBadgeOperator,
)
from airflow_provider_credly.operators.base import report_or_raise
from airflow_provider_credly.operators.canvas_credentials import (
    CanvasCredentialsBulkIssueAssertionsOperator,
    CanvasCredentialsIssueAssertionOperator,
    CanvasCredentialsRevokeAssertionsOperator,
)
from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator
from tests.unit.operators.test_badges import FakeTI

DEFAULT_ARGS = {
    "workers": 3,
    "max_failures": 2,
    "credly_conn_id": "x",
    "canvas_credentials_conn_id": "y",
}


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), default_args=DEFAULT_ARGS)


def test_dag_default_args_reach_both_bulk_operators() -> None:
    with _dag("default_args_bulk"):
        credly = CredlyBulkIssueBadgesOperator(task_id="credly", rows=[])
        canvas = CanvasCredentialsBulkIssueAssertionsOperator(task_id="canvas", rows=[])
    assert (credly.workers, credly.max_failures, credly.credly_conn_id) == (3, 2, "x")
    assert (canvas.workers, canvas.max_failures, canvas.canvas_credentials_conn_id) == (3, 2, "y")
    assert credly.hook.credly_conn_id == "x" and isinstance(credly.hook, CredlyHook)
    assert canvas.hook.canvas_credentials_conn_id == "y" and isinstance(canvas.hook, CanvasCredentialsHook)


def test_task_default_args_reach_both_bulk_operators_and_explicit_arguments_win() -> None:
    credly = CredlyBulkIssueBadgesOperator(task_id="credly", rows=[], default_args=DEFAULT_ARGS, workers=5)
    canvas = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="canvas", rows=[], default_args=DEFAULT_ARGS
    )
    assert (credly.workers, credly.max_failures, credly.credly_conn_id) == (5, 2, "x")
    assert (canvas.workers, canvas.max_failures, canvas.canvas_credentials_conn_id) == (3, 2, "y")


def test_dag_default_args_reach_the_other_operators() -> None:
    with _dag("default_args_others"):
        revoke = CredlyRevokeBadgeOperator(task_id="revoke", badge_ids=["a"])
        sync = CredlyEmployeeSyncOperator(task_id="sync", roster=[])
        issue = CredlyIssueBadgeOperator(
            task_id="issue",
            recipient_email="a@b.c",
            issued_to_first_name="A",
            issued_to_last_name="B",
            badge_template_id="t",
        )
        award = CanvasCredentialsIssueAssertionOperator(
            task_id="award", badge_class_id="B", recipient_identity="a"
        )
        canvas_revoke = CanvasCredentialsRevokeAssertionsOperator(
            task_id="canvas_revoke", assertion_ids=["a"]
        )
    assert (revoke.workers, revoke.max_failures, revoke.credly_conn_id) == (3, 2, "x")
    assert (sync.workers, sync.max_failures, sync.credly_conn_id) == (3, 2, "x")
    assert issue.credly_conn_id == "x"
    assert award.canvas_credentials_conn_id == "y"
    assert (canvas_revoke.workers, canvas_revoke.max_failures, canvas_revoke.canvas_credentials_conn_id) == (
        3,
        2,
        "y",
    )


def test_hook_pool_grows_with_workers() -> None:
    assert CredlyBulkIssueBadgesOperator(task_id="b", rows=[], workers=40).hook.pool_size == 40
    assert CanvasCredentialsBulkIssueAssertionsOperator(task_id="b", rows=[], workers=2).hook.pool_size == 16


def test_rendering_converts_typed_fields_of_both_backends() -> None:
    context: dict[str, Any] = {"params": {"n": "3", "flag": "true"}}
    credly = CredlyBulkIssueBadgesOperator(
        task_id="credly", rows=[], workers="{{ params.n }}", check_existing="{{ params.flag }}"
    )
    canvas = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="canvas",
        rows=[],
        workers="{{ params.n }}",
        max_failures="{{ params.n }}",
        max_requests_per_second="{{ params.n }}",
        max_xcom_rows="{{ params.n }}",
        allow_duplicate_awards="{{ params.flag }}",
    )
    award = CanvasCredentialsIssueAssertionOperator(
        task_id="award",
        badge_class_id="B",
        recipient_identity="a",
        hashed="false",
        allow_duplicate_awards="1",
    )
    revoke = CanvasCredentialsRevokeAssertionsOperator(
        task_id="revoke", assertion_ids=["a"], workers="{{ params.n }}", max_failures="0"
    )
    for op in (credly, canvas, award, revoke):
        op.render_template_fields(context)
    assert (credly.workers, credly.check_existing) == (3, True)
    assert (canvas.workers, canvas.max_failures, canvas.max_xcom_rows) == (3, 3, 3)
    assert (canvas.max_requests_per_second, canvas.allow_duplicate_awards) == (3.0, True)
    assert (award.hashed, award.allow_duplicate_awards) == (False, True)
    assert (revoke.workers, revoke.max_failures) == (3, 0)
    bad = CanvasCredentialsRevokeAssertionsOperator(task_id="revoke", assertion_ids=["a"], workers="many")
    with pytest.raises(ValueError, match="workers must be a number"):
        bad.render_template_fields(context)


def test_rendering_a_mapped_task_converts_its_typed_fields() -> None:
    """Airflow renders a mapped task's unmapped copy without calling its ``render_template_fields``."""
    dag = DAG("mapped_typed_fields", schedule=None, params={"n": "2"})
    with dag:
        mapped = CredlyRevokeBadgeOperator.partial(
            task_id="revoke", reason="r", workers="{{ params.n }}", follow_replacement="True"
        ).expand(badge_ids=[["a"], ["b"]])
    ti = FakeTI()
    ti.map_index = 1
    context: dict[str, Any] = {"ti": ti, "dag": dag, "dag_run": SimpleNamespace(conf={})}
    mapped.render_template_fields(context)
    task = context["task"]
    assert isinstance(task, CredlyRevokeBadgeOperator)
    assert (task.badge_ids, task.workers, task.follow_replacement) == (["b"], 2, True)


def test_report_or_raise_pushes_the_report_only_when_it_fails() -> None:
    context: dict[str, Any] = {"ti": FakeTI()}
    xcom = {"failed": 1}
    assert report_or_raise(context, xcom, failed=1, max_failures=1, message="m") is xcom
    assert context["ti"].pushed == {}
    with pytest.raises(AirflowException, match="^m$"):
        report_or_raise(context, xcom, failed=0, max_failures=1, message="m", incomplete=True)
    assert context["ti"].pushed == {"report": xcom}
    context = {"ti": FakeTI()}
    with pytest.raises(AirflowException, match="too many"):
        report_or_raise(context, xcom, failed=2, max_failures=1, message="too many")
    assert context["ti"].pushed == {"report": xcom}
