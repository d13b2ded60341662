"""Unit tests of the badge operators: validation, the documented 422 mappings and the XCom shapes.

HTTP is served by ``responses`` (Credly's documented bodies); the connection comes from the environment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.operators.badges import (
    CredlyBulkIssueBadgesOperator,
    CredlyDeleteBadgeOperator,
    CredlyIssueBadgeOperator,
    CredlyReplaceBadgeOperator,
    CredlyRevokeBadgeOperator,
    run_date,
)
from tests.unit.actions.test_credly import ALREADY_REPLACED, ALREADY_REVOKED, DELETE_REPLACED, REVOKE_REPLACED
from tests.unit.operators.conftest import BASE, ORG

BADGES = f"{BASE}/organizations/{ORG}/badges"
LOGICAL = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
DUPLICATE = {
    "data": {
        "message": "Validation failed: User already has this badge",
        "errors": [{"attribute": "user", "messages": ["already has this badge"]}],
    },
    "metadata": {},
}


class FakeTI:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}
        self.dag_id, self.run_id = "d", "r"

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def ctx(try_number: int = 1, **extra: Any) -> dict[str, Any]:
    return {"logical_date": LOGICAL, "ti": FakeTI(try_number), **extra}


def badge(
    badge_id: str, email: str = "ada@example.com", template: str = "tpl", state: str = "pending"
) -> dict:
    return {
        "id": badge_id,
        "state": state,
        "recipient_email": email,
        "issuer_earner_id": None,
        "badge_template": {"id": template},
        "badge_url": f"https://www.credly.com/badges/{badge_id}",
    }


def issue_op(**kw: Any) -> CredlyIssueBadgeOperator:
    args = {
        "task_id": "issue",
        "recipient_email": "ada@example.com",
        "issued_to_first_name": "Ada",
        "issued_to_last_name": "Lovelace",
        "badge_template_id": "tpl",
        **kw,
    }
    return CredlyIssueBadgeOperator(**args)


def test_issue_template_fields_cover_every_user_argument() -> None:
    fields = set(CredlyIssueBadgeOperator.template_fields)
    assert {
        "recipient_email",
        "badge_template_id",
        "issued_at",
        "expires_at",
        "evidence",
        "credly_conn_id",
    } <= fields


def test_run_date_falls_back_when_the_run_has_no_logical_date() -> None:
    end = datetime(2026, 1, 2, tzinfo=UTC)
    assert run_date({"logical_date": None, "data_interval_end": end}) == end
    assert run_date({}).tzinfo is not None


@responses.activate
def test_issue_defaults_issued_at_to_the_logical_date_and_returns_the_badge() -> None:
    location = f"{BADGES}/b1"
    post = responses.post(BADGES, json={"data": badge("b1")}, status=201, headers={"Location": location})
    result = issue_op(suppress_badge_notification_email=True).execute(ctx())
    assert result == {
        "outcome": "issued",
        "id": "b1",
        "state": "pending",
        "url": "https://www.credly.com/badges/b1",
        "badge_template_id": "tpl",
        "recipient_email": "ada@example.com",
        "issuer_earner_id": None,
        "location": location,
    }
    body = json.loads(post.calls[0].request.body)
    assert body["issued_at"] == "2026-03-01 06:30:00 +0000"
    assert body["suppress_badge_notification_email"] is True
    assert "secret-token-123" not in json.dumps(result)


@responses.activate
def test_issue_invalid_input_fails_before_any_call() -> None:
    with pytest.raises(ValueError, match="recipient_email") as info:
        issue_op(recipient_email="not-an-email", locale="xx").execute(ctx())
    assert "locale" in str(info.value)
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize(("if_exists", "raises"), [("return", False), ("fail", True)])
def test_issue_duplicate_422_resolves_to_the_existing_badge(if_exists: str, raises: bool) -> None:
    responses.post(BADGES, json=DUPLICATE, status=422)
    responses.get(
        BADGES, json={"data": [badge("old-1", state="accepted")], "metadata": {"next_page_url": None}}
    )
    op = issue_op(if_exists=if_exists)
    if raises:
        with pytest.raises(AirflowException, match="already exists: old-1"):
            op.execute(ctx())
    else:
        result = op.execute(ctx())
        assert (result["outcome"], result["id"]) == ("already_existed", "old-1")


@responses.activate
def test_issue_on_task_retry_looks_up_before_posting() -> None:
    lookup = responses.get(BADGES, json={"data": [badge("b1")], "metadata": {"next_page_url": None}})
    post = responses.post(BADGES, json={"data": badge("b2")}, status=201)
    result = issue_op().execute(ctx(try_number=2))
    assert (result["outcome"], result["id"]) == ("already_existed", "b1")
    assert post.call_count == 0
    assert "badge_template_id::tpl" in lookup.calls[0].request.url.replace("%3A", ":")


@responses.activate
def test_issue_unknown_outcome_adopts_the_badge_it_created() -> None:
    responses.post(BADGES, json={"data": {"message": "oops"}}, status=502)
    created = {**badge("b9"), "created_at": datetime.now(UTC).isoformat()}  # by that POST
    responses.get(BADGES, json={"data": [created], "metadata": {"next_page_url": None}})
    result = issue_op().execute(ctx())
    assert (result["outcome"], result["id"]) == ("issued", "b9")
    assert sum(1 for c in responses.calls if c.request.method == "POST") == 1


def bulk_rows(n: int) -> list[dict[str, Any]]:
    return [{"email": f"u{i}@example.com", "first": "A", "last": "B", "course": "c1"} for i in range(n)]


MAPPING = {"recipient_email": "email", "issued_to_first_name": "first", "issued_to_last_name": "last"}


@responses.activate
def test_bulk_reports_all_invalid_rows_before_any_call() -> None:
    rows = bulk_rows(4)
    rows[1]["email"] = "broken"
    rows[3]["first"] = None
    op = CredlyBulkIssueBadgesOperator(
        task_id="bulk", rows=rows, column_mapping=MAPPING, defaults={"badge_template_id": "tpl"}
    )
    with pytest.raises(InvalidRowsError) as info:
        op.execute(ctx())
    assert sorted(info.value.problems) == [1, 3]
    assert len(responses.calls) == 0


@responses.activate
def test_bulk_xcom_shape_and_issued_at_default() -> None:
    post = responses.post(BADGES, json={"data": badge("bX")}, status=201)
    op = CredlyBulkIssueBadgesOperator(
        task_id="bulk",
        rows=json.dumps(bulk_rows(3)),
        column_mapping=MAPPING,
        defaults={"badge_template_id": "tpl"},
        workers=2,
    )
    xcom = op.execute(ctx())
    assert xcom == {
        "issued": 3,
        "already_existed": 0,
        "failed": 0,
        "skipped": 0,
        "total": 3,
        "throttled": 0,
        "rows": [[0, "issued", "bX"], [1, "issued", "bX"], [2, "issued", "bX"]],
        "rows_truncated": False,
    }
    assert json.loads(post.calls[0].request.body)["issued_at"] == "2026-03-01 06:30:00 +0000"


@responses.activate
def test_bulk_fails_over_max_failures_and_pushes_the_report() -> None:
    responses.post(
        BADGES, json={"data": {"message": "Validation failed: Badge template not found"}}, status=422
    )
    responses.get(BADGES, json={"data": [], "metadata": {"next_page_url": None}})
    op = CredlyBulkIssueBadgesOperator(
        task_id="bulk",
        rows=bulk_rows(5),
        column_mapping=MAPPING,
        defaults={"badge_template_id": "tpl"},
        workers=1,
    )
    context = ctx()
    with pytest.raises(AirflowException, match="5 of 5 badge"):
        op.execute(context)
    report = context["ti"].pushed["report"]
    assert report["failed"] == 1
    assert report["skipped"] == 4
    assert report["rows"][0] == [0, "failed", "rejected (422): Validation failed: Badge template not found"]


def _post_for(email: str, status: int, body: dict[str, Any]) -> None:
    from responses import matchers

    match = [matchers.json_params_matcher({"recipient_email": email}, strict_match=False)]
    responses.post(BADGES, json=body, status=status, match=match)


INVALID = {
    "data": {
        "message": "Validation failed: Expires at must be after issued at",
        "errors": [{"attribute": "expires_at", "messages": ["must be after issued at"]}],
    },
    "metadata": {},
}


@responses.activate
def test_bulk_fails_for_good_only_when_no_failure_is_transient() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    _post_for("u0@example.com", 422, INVALID)
    _post_for("u1@example.com", 201, {"data": badge("b1", "u1@example.com")})
    _post_for("u2@example.com", 503, {"data": {"message": "busy"}})
    responses.get(BADGES, json={"data": [], "metadata": {"next_page_url": None}})
    rows = bulk_rows(3)

    def run(rows: list[dict[str, Any]], max_failures: int) -> tuple[BaseException, dict[str, Any]]:
        op = CredlyBulkIssueBadgesOperator(
            task_id="bulk",
            rows=rows,
            column_mapping=MAPPING,
            defaults={"badge_template_id": "tpl"},
            max_failures=max_failures,
            workers=1,
        )
        context = ctx()
        with pytest.raises(AirflowException) as info:
            op.execute(context)
        return info.value, context["ti"].pushed["report"]

    # the 422 would be met again: no retry, and the report still names the issued and the failed row
    error, report = run([rows[1], rows[0]], max_failures=0)
    assert isinstance(error, AirflowFailException) and "a retry cannot fix" in str(error)
    assert report["rows"][0] == [0, "issued", "b1"]
    assert report["rows"][1][:2] == [1, "failed"]
    assert "Expires at must be after issued at" in report["rows"][1][2]
    # with the 503 of another row among the failures a retry may help: retryable
    error, report = run(rows, max_failures=1)
    assert not isinstance(error, AirflowFailException)
    assert (report["failed"], report["issued"]) == (2, 1)


def test_bulk_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of rows or sql"):
        CredlyBulkIssueBadgesOperator(task_id="b").execute(ctx())
    with pytest.raises(ValueError, match="sql needs sql_conn_id"):
        CredlyBulkIssueBadgesOperator(task_id="b", sql="select 1").execute(ctx())


@responses.activate
def test_revoke_maps_each_documented_422() -> None:
    responses.put(f"{BADGES}/ok/revoke", json={"data": badge("ok", state="revoked")})
    responses.put(f"{BADGES}/done/revoke", json=ALREADY_REVOKED, status=422)
    responses.put(f"{BADGES}/old/revoke", json=REVOKE_REPLACED, status=422)
    op = CredlyRevokeBadgeOperator(
        task_id="revoke", badge_ids=["ok", "done", "old"], reason="Course cancelled", max_failures=1
    )
    xcom = op.execute(ctx())
    assert xcom["counts"] == {"revoked": 1, "already_revoked": 1, "failed": 1}
    failed = next(r for r in xcom["results"] if r["outcome"] == "failed")
    assert failed["badge_id"] == "old"
    assert failed["new_badge_id"] == "new-1"
    assert "new-1" in failed["detail"]


@responses.activate
def test_revoke_follow_replacement_and_failure_threshold() -> None:
    responses.put(f"{BADGES}/old/revoke", json=REVOKE_REPLACED, status=422)
    responses.put(f"{BADGES}/new-1/revoke", json={"data": badge("new-1", state="revoked")})
    xcom = CredlyRevokeBadgeOperator(
        task_id="r", badge_ids="old", reason="x", follow_replacement=True
    ).execute(ctx())
    assert xcom["results"] == [{"badge_id": "old", "outcome": "revoked", "acted_on": "new-1"}]
    context = ctx()
    with pytest.raises(AirflowException, match="1 of 1 badge"):
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["old"], reason="x").execute(context)
    assert context["ti"].pushed["report"]["failed"] == 1


@responses.activate
def test_revoke_and_replace_fail_for_good_on_errors_a_retry_cannot_fix() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    responses.put(f"{BADGES}/old/revoke", json=REVOKE_REPLACED, status=422)
    responses.put(f"{BADGES}/busy/revoke", json={"data": {"message": "busy"}}, status=503)
    with pytest.raises(AirflowFailException, match="1 of 1 badge"):
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["old"], reason="x").execute(ctx())
    # a transient failure among them keeps the task retryable; ids not attempted do not count
    with pytest.raises(AirflowException, match="2 of 2 badge") as info:
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["old", "busy"], reason="x", max_failures=1).execute(
            ctx()
        )
    assert not isinstance(info.value, AirflowFailException)
    with pytest.raises(AirflowFailException, match="3 of 3 badge"):
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["old", "busy", "x"], reason="x", workers=1).execute(
            ctx()
        )
    responses.post(f"{BADGES}/old/replace", json={"data": {"message": "Unauthorized"}}, status=401)
    with pytest.raises(AirflowFailException, match="badge old not replaced"):
        CredlyReplaceBadgeOperator(task_id="p", badge_id="old", badge_template_id="tpl").execute(ctx())


@responses.activate
def test_revoke_validation_before_any_call() -> None:
    with pytest.raises(ValueError, match="reason is required"):
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["a"]).execute(ctx())
    with pytest.raises(ValueError, match="no badge_id"):
        CredlyRevokeBadgeOperator(task_id="r", badge_ids=["a", ""], reason="x").execute(ctx())
    assert len(responses.calls) == 0


@responses.activate
def test_delete_maps_404_and_replaced() -> None:
    responses.delete(f"{BADGES}/gone", json={"data": {"message": "not found"}}, status=404)
    responses.delete(f"{BADGES}/old", json=DELETE_REPLACED, status=422)
    responses.put(f"{BADGES}/old/revoke", json=REVOKE_REPLACED, status=422)
    responses.delete(f"{BADGES}/new-1", status=204)
    xcom = CredlyDeleteBadgeOperator(task_id="d", badge_ids=["gone", "old"], follow_replacement=True).execute(
        ctx()
    )
    assert xcom["counts"] == {"already_deleted": 1, "deleted": 1}
    assert {"badge_id": "old", "outcome": "deleted", "acted_on": "new-1"} in xcom["results"]


@responses.activate
def test_replace_operator() -> None:
    post = responses.post(f"{BADGES}/b1/replace", json={"data": badge("b2")}, status=201)
    xcom = CredlyReplaceBadgeOperator(
        task_id="rep", badge_id="b1", badge_template_id="tpl", fields={"notification_message": "Updated"}
    ).execute(ctx())
    assert xcom == {"badge_id": "b1", "outcome": "replaced", "acted_on": "b1", "new_badge_id": "b2"}
    assert json.loads(post.calls[0].request.body)["issued_at"] == "2026-03-01 06:30:00 +0000"


@responses.activate
def test_replace_already_replaced_first_try_fails_retry_adopts() -> None:
    responses.post(f"{BADGES}/b1/replace", json=ALREADY_REPLACED, status=422)
    op = CredlyReplaceBadgeOperator(task_id="rep", badge_id="b1", badge_template_id="tpl")
    with pytest.raises(AirflowException, match="current version is new-1"):
        op.execute(ctx())
    xcom = op.execute(ctx(try_number=2))
    assert (xcom["outcome"], xcom["new_badge_id"]) == ("already_replaced", "new-1")


def test_replace_validation() -> None:
    with pytest.raises(ValueError, match="badge_template_id"):
        CredlyReplaceBadgeOperator(task_id="rep", badge_id="b1", badge_template_id="").execute(ctx())


@responses.activate
def test_rendered_numbers_and_flags_are_converted() -> None:
    responses.put(f"{BADGES}/old/revoke", json=REVOKE_REPLACED, status=422)
    responses.put(f"{BADGES}/new-1/revoke", json={"data": badge("new-1", state="revoked")})
    op = CredlyRevokeBadgeOperator(
        task_id="r", badge_ids='["old"]', reason="x", follow_replacement="True", workers="2", max_failures="0"
    )
    context = ctx()
    op.render_template_fields(context)  # as Airflow does before execute
    assert op.execute(context)["counts"] == {"revoked": 1}
    assert (op.workers, op.follow_replacement) == (2, True)
    with pytest.raises(ValueError, match="workers must be a number"):
        CredlyRevokeBadgeOperator(
            task_id="r", badge_ids="a", reason="x", workers="many"
        ).render_template_fields(ctx())
    assert {"workers", "max_failures", "follow_replacement"} <= set(CredlyRevokeBadgeOperator.template_fields)
