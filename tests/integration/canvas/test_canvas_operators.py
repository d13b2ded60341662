"""Canvas Credentials award/revoke operators over real HTTP against the emulator, with injected faults."""

from __future__ import annotations

import pytest

from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.operators.canvas_credentials import (
    CanvasCredentialsBulkIssueAssertionsOperator,
    CanvasCredentialsIssueAssertionOperator,
    CanvasCredentialsRevokeAssertionsOperator,
)

pytestmark = pytest.mark.integration


def test_bulk_issue_with_faults_awards_exactly_once_per_row(canvas_conn):
    state = canvas_conn.state
    bc = state.badge_class_ids[0]
    emails = [f"bulk{n:04d}@example.edu" for n in range(150)]
    rows = [{"recipient_email": e, "narrative": f"row {n}"} for n, e in enumerate(emails)]
    canvas_conn.set_faults(
        error_rate=0.1, error_after_rate=0.2, drop_rate=0.03, fail_paths="assertions", seed=11
    )
    op = CanvasCredentialsBulkIssueAssertionsOperator(task_id="bulk", rows=rows, badge_class_id=bc, workers=6)
    result = op.execute(context={})
    canvas_conn.clear_faults()
    assert result["failed"] == 0
    assert result["issued"] + result["already_existed"] == 150
    assert state.stats["errors_after"] > 0
    assert state.stats["duplicate_rejected"] > 0  # repeated POSTs were refused by the server...
    for email in emails:  # ...and every row has exactly one award
        assert state.count_assertions(badgeclass=bc, recipient_email=email) == 1, email
    issued_ids = [r[2] for r in result["rows"]]
    assert len(set(issued_ids)) == 150

    again = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="bulk", rows=rows, badge_class_id=bc, workers=6
    )
    second = again.execute(context={})
    assert second["already_existed"] == 150
    assert [r[2] for r in second["rows"]] == issued_ids
    assert sum(state.count_assertions(badgeclass=bc, recipient_email=e) for e in emails) == 150


def test_invalid_rows_are_reported_before_any_request(canvas_conn):
    rows = [
        {"recipient_email": "ok@example.edu"},
        {"recipient_email": "nope"},
        {"recipient": "x", "badgeclass": "B"},
    ]
    op = CanvasCredentialsBulkIssueAssertionsOperator(task_id="bulk", rows=rows, badge_class_id=None)
    with pytest.raises(InvalidRowsError) as info:
        op.execute(context={})
    assert set(info.value.problems) == {0, 1, 2}
    assert "unknown field 'recipient'" in str(info.value)
    assert canvas_conn.state.stats["token_password"] == 0


def test_single_issue_is_idempotent(canvas_conn):
    bc = canvas_conn.state.badge_class_ids[1]
    kwargs = {
        "task_id": "one",
        "badge_class_id": bc,
        "recipient_identity": "Solo@Example.edu",
        "narrative": "n",
    }
    first = CanvasCredentialsIssueAssertionOperator(**kwargs).execute(context={})
    second = CanvasCredentialsIssueAssertionOperator(**kwargs).execute(context={})
    assert first["outcome"] == "issued"
    assert second["outcome"] == "already_existed"
    assert second["id"] == first["id"]
    assert first["recipient"] == "Solo@Example.edu"
    assert canvas_conn.state.count_assertions(badgeclass=bc, recipient_email="solo@example.edu") == 1


def test_revoke_is_retry_safe(canvas_conn):
    state = canvas_conn.state
    ids = [a["entityId"] for a in state.iter_assertions(revoked=False)][:3]
    canvas_conn.set_faults(error_after_rate=1.0, error_after_mode="error", fail_paths="/v2/assertions/")
    result = CanvasCredentialsRevokeAssertionsOperator(
        task_id="revoke", assertion_ids=ids, reason="r"
    ).execute(context={})
    canvas_conn.clear_faults()
    assert result["failed"] == 0
    assert result["counts"] == {"already_revoked": 3}  # the lost first response was retried
    assert all(state.assertions[i]["revoked"] and state.assertions[i]["revocationReason"] == "r" for i in ids)
    again = CanvasCredentialsRevokeAssertionsOperator(task_id="revoke", assertion_ids=ids[0]).execute(
        context={}
    )
    assert again["counts"] == {"already_revoked": 1}


def test_bulk_issue_writes_one_report_row_per_input_row(canvas_conn, duckdb_conn):
    import duckdb

    state = canvas_conn.state
    bc = state.badge_class_ids[0]
    rows = [
        {"recipient_email": "rep0@example.edu"},
        {"recipient_email": "rep1@example.edu", "badgeclass": "no-such-badge-class"},
        {"recipient_email": "rep2@example.edu"},
    ]
    op = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="bulk_report",
        rows=rows,
        badge_class_id=bc,
        max_failures=1,
        report_conn_id="duckdb_warehouse",
        report_table="canvas_award_report",
    )
    result = op.execute(context={"run_id": "run-1"})
    assert (result["issued"], result["failed"]) == (2, 1)
    with duckdb.connect(str(duckdb_conn), read_only=True) as con:
        report = con.execute(
            "select run_id, task_id, try_number, row_index, outcome, assertion_id, reason, badgeclass, "
            "recipient_identity from canvas_award_report order by row_index"
        ).fetchall()
    issued = {r[0]: r[2] for r in result["rows"] if r[1] == "issued"}
    assert [r[:5] for r in report] == [
        ("run-1", "bulk_report", 1, 0, "issued"),
        ("run-1", "bulk_report", 1, 1, "failed"),
        ("run-1", "bulk_report", 1, 2, "issued"),
    ]
    assert (report[0][5], report[2][5]) == (issued[0], issued[2])
    assert report[1][5] is None and report[1][6]  # a failed row: no assertion, a reason
    assert [(r[7], r[8]) for r in report] == [
        (bc, "rep0@example.edu"),
        ("no-such-badge-class", "rep1@example.edu"),
        (bc, "rep2@example.edu"),
    ]


def test_report_table_without_its_connection_is_refused_before_any_request(canvas_conn):
    op = CanvasCredentialsBulkIssueAssertionsOperator(
        task_id="bulk", rows=[{"recipient_email": "a@example.edu"}], badge_class_id="B", report_table="t"
    )
    with pytest.raises(ValueError, match="report_table needs report_conn_id"):
        op.execute(context={})
    assert canvas_conn.state.stats["token_password"] == 0


def test_revoke_over_max_failures_pushes_its_report_and_fails(canvas_conn):
    from airflow.sdk.exceptions import AirflowException

    from tests.unit.operators.test_badges import FakeTI

    state = canvas_conn.state
    known = next(a["entityId"] for a in state.iter_assertions(revoked=False))
    context = {"ti": FakeTI()}
    op = CanvasCredentialsRevokeAssertionsOperator(
        task_id="revoke", assertion_ids=[known, "no-such-assertion"], reason="r"
    )
    with pytest.raises(AirflowException, match="1 of 2 assertion"):
        op.execute(context=context)
    report = context["ti"].pushed["report"]
    assert (report["counts"], report["failed"], report["total"]) == ({"revoked": 1, "failed": 1}, 1, 2)
    assert [(r["badge_id"], r["outcome"]) for r in report["results"]] == [
        ("no-such-assertion", "failed"),  # failed results are listed first
        (known, "revoked"),
    ]
    assert state.assertions[known]["revoked"]
