"""Whose badge is it? Over real HTTP to the Credly emulator: only Credly's duplicate refusal means "already
exists", identical rows each get their own badge, and a task retry recognises its earlier try's badge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.operators.badges import CredlyBulkIssueBadgesOperator, CredlyIssueBadgeOperator
from airflow_provider_credly.testing.emulator.errors import MSG_TEMPLATE_ARCHIVED
from tests.conftest import ROOT, connect_credly
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration

EMAIL = "owner@example.org"


def refusing_template(emulator: Any) -> Any:
    return next(t for t in emulator.state.templates if not t.allow_duplicates)


def old_badge(emulator: Any, template_id: str, email: str = EMAIL) -> dict[str, Any]:
    """A badge created in 2020, long before any task of these tests."""
    state = emulator.state
    clock = state.clock
    state.clock = lambda: datetime(2020, 1, 1, tzinfo=UTC)
    try:
        return state.issue_badge(
            recipient_email=email,
            issued_to_first_name="Old",
            issued_to_last_name="Badge",
            badge_template_id=template_id,
            issued_at="2020-01-01 00:00:00 +0000",
        )
    finally:
        state.clock = clock


def issue_op(template_id: str, **kwargs: Any) -> CredlyIssueBadgeOperator:
    return CredlyIssueBadgeOperator(
        task_id="one",
        recipient_email=EMAIL,
        issued_to_first_name="Ada",
        issued_to_last_name="Lovelace",
        badge_template_id=template_id,
        **kwargs,
    )


def test_archived_template_422_fails_with_credlys_message_despite_an_older_badge(
    credly_emulator_factory, monkeypatch
) -> None:
    emulator = credly_emulator_factory(badges=10, employees=1)
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    template = refusing_template(emulator)
    old = old_badge(emulator, template.id)
    emulator.state.archive_template(template.id)
    with pytest.raises(AirflowException, match="archived badge template") as info:
        issue_op(template.id).execute({})
    assert old["id"] not in str(info.value)
    assert emulator.state.request_count("POST", "badges.create") == 1
    assert emulator.state.issue_count == 1  # only the old badge

    payload_rows = [{"recipient_email": EMAIL, "issued_to_first_name": "A", "issued_to_last_name": "B"}]
    bulk = CredlyBulkIssueBadgesOperator(
        task_id="bulk", rows=payload_rows, defaults={"badge_template_id": template.id}, max_failures=5
    )
    report = bulk.execute({})
    assert (report["failed"], report["already_existed"]) == (1, 0)
    assert MSG_TEMPLATE_ARCHIVED in report["rows"][0][2]


@pytest.mark.parametrize(("if_exists", "outcome"), [("return", "already_existed"), ("fail", None)])
def test_duplicate_refusal_of_an_older_badge_is_already_existed(
    credly_emulator_factory, monkeypatch, if_exists: str, outcome: str | None
) -> None:
    emulator = credly_emulator_factory(badges=10, employees=1)
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    template = refusing_template(emulator)
    old = old_badge(emulator, template.id)
    op = issue_op(template.id, if_exists=if_exists)
    if outcome is None:
        with pytest.raises(AirflowException, match=f"a badge already exists: {old['id']}"):
            op.execute({})
    else:
        result = op.execute({})
        assert (result["outcome"], result["id"]) == (outcome, old["id"])
    assert emulator.state.issue_count == 1


def test_identical_rows_with_lost_answers_each_get_their_own_badge_in_row_order(
    credly_emulator_factory, monkeypatch
) -> None:
    emulator = credly_emulator_factory(
        badges=10, employees=1, error_after_rate=1.0, error_after_mode="alternate", fail_paths=r"/badges$"
    )
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    template = emulator.state.templates[0]
    assert template.allow_duplicates
    rows = [
        {
            "recipient_email": f"twin{i % 3}@example.org",
            "issued_to_first_name": f"T{i}",
            "issued_to_last_name": "W",
        }
        for i in range(12)
    ]
    op = CredlyBulkIssueBadgesOperator(
        task_id="bulk", rows=rows, defaults={"badge_template_id": template.id}, workers=4
    )
    report = op.execute({})
    assert (report["issued"], report["failed"]) == (12, 0)
    assert emulator.state.stats()["errors_after"] == 12  # every answer was lost after the effect
    credited = {i: badge_id for i, _, badge_id in report["rows"]}
    assert len(set(credited.values())) == 12
    for k in range(3):
        email = f"twin{k}@example.org"
        created = sorted(emulator.state.find_badges(recipient_email=email), key=lambda b: b["created_at"])
        assert len(created) == 4
        # each row got the badge its own POST created: row order is creation order, names match
        mine = [credited[i] for i in range(k, 12, 3)]
        assert [b["id"] for b in created] == mine
        assert [b["issued_to_first_name"] for b in created] == [f"T{i}" for i in range(k, 12, 3)]


def test_retry_with_if_exists_fail_recognises_the_first_trys_badge(
    airflow_db, credly_emulator_factory, monkeypatch
) -> None:
    # try 1: the POST creates the badge but its answer is lost, and the look-up that would find it fails
    # too, so the try fails; then no more faults. Try 2 must report that badge as issued, not "exists".
    emulator = credly_emulator_factory(
        badges=10,
        employees=1,
        error_after_rate=1.0,
        error_after_mode="error",
        error_rate=1.0,
        error_methods="GET",
        max_faults=2,
        fail_paths=r"/badges$",
    )
    connect_credly(monkeypatch, emulator, backoff_max=0.05, max_retries=0)
    template = refusing_template(emulator)
    old_badge(emulator, template.id, "someone.else@example.org")  # another recipient: irrelevant
    dag = load_module(ROOT / "tests" / "dags" / "ops_issue_fail_retry.py", "ops_issue_fail_retry")
    dag_run = run_dag(dag.ops_issue_fail_retry(), run_conf={"template": template.id})

    assert task_states(dag_run) == {"issue": "success"}
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "issue")
    assert ti.try_number == 2
    badges = emulator.state.find_badges(recipient_email="retry.fail@example.org")
    assert len(badges) == 1
    assert emulator.state.stats()["errors_after"] == 1
    result = ti.xcom_pull(task_ids="issue")
    assert (result["outcome"], result["id"]) == ("issued", badges[0]["id"])


def test_retry_with_if_exists_fail_still_fails_on_a_badge_from_before_the_task(
    credly_emulator_factory, monkeypatch
) -> None:
    emulator = credly_emulator_factory(badges=10, employees=1)
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    template = refusing_template(emulator)
    old = old_badge(emulator, template.id)

    class TI:
        try_number = 2

    class DagRun:
        start_date = datetime.now(UTC)

    with pytest.raises(AirflowException, match=f"a badge already exists: {old['id']}"):
        issue_op(template.id, if_exists="fail").execute({"ti": TI(), "dag_run": DagRun()})  # type: ignore[arg-type]
    assert emulator.state.issue_count == 1
