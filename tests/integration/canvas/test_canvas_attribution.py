"""Canvas Credentials over real HTTP: a duplicate refusal whose answer was lost, then repeated, resolves by
the assertion's creation time: an award from before the row's first attempt already existed."""

from __future__ import annotations

import pytest

from airflow_provider_credly.operators.canvas_credentials import CanvasCredentialsBulkIssueAssertionsOperator

pytestmark = pytest.mark.integration

OLD = 1577836800.0  # 2020-01-01T00:00:00Z


def test_lost_refusal_of_an_old_award_is_already_existed_not_issued(canvas_conn):
    state = canvas_conn.state
    bc = state.badge_class_ids[0]
    clock = state.clock
    state.clock = lambda: OLD
    try:
        old = state.create_assertion(
            "badgeclasses", bc, {"recipient": {"identity": "held@example.edu", "type": "email"}}
        )
    finally:
        state.clock = clock
    # the first refusal is decided by the server, then its answer is lost (500); the repeat is refused too
    canvas_conn.set_faults(
        error_after_rate=1.0,
        error_after_mode="error",
        error_after_refusals=True,
        max_faults=1,
        fail_paths="assertions$",
    )
    rows = [{"recipient_email": "held@example.edu"}, {"recipient_email": "new@example.edu"}]
    op = CanvasCredentialsBulkIssueAssertionsOperator(task_id="bulk", rows=rows, badge_class_id=bc, workers=1)
    report = op.execute(context={})
    assert state.stats["errors_after"] == 1
    assert state.stats["duplicate_rejected"] == 2
    assert report["rows"][0] == [0, "already_existed", old["entityId"]]
    assert report["rows"][1][1] == "issued"
    assert (report["issued"], report["already_existed"], report["failed"]) == (1, 1, 0)
    assert state.count_assertions(badgeclass=bc, recipient_email="held@example.edu") == 1
