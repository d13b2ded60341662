"""Revoke/delete/replace outcome mapping, with Credly's documented responses served by ``responses``."""

from __future__ import annotations

import json

import pytest
import responses

from airflow_provider_credly.actions.credly import PROBE_REASON, delete_badge, replace_badge, revoke_badge
from airflow_provider_credly.actions.results import actions_xcom, run_actions
from airflow_provider_credly.client import CredlyClient, RetryPolicy

BASE = "https://api.credly.test/v1"
ORG = "org-1"
BADGES = f"{BASE}/organizations/{ORG}/badges"

REVOKE_REPLACED = {
    "data": {
        "message": "Validation failed: This badge cannot be revoked because it has been replaced.",
        "errors": [
            {
                "attribute": "base",
                "attribute_label": "Base",
                "messages": ["This badge cannot be revoked because it has been replaced."],
            }
        ],
    },
    "metadata": {"current_badge_id": "new-1"},
}
ALREADY_REPLACED = {
    "data": {
        "message": "Validation failed: This badge cannot be replaced because it has already been replaced.",
        "errors": [
            {
                "attribute": "base",
                "attribute_label": "Base",
                "messages": ["This badge cannot be replaced because it has already been replaced."],
            }
        ],
    },
    "metadata": {"current_badge_id": "new-1"},
}
DELETE_REPLACED = {
    "data": {"message": "You can not delete replaced badges. Delete the current version instead."},
    "metadata": None,
}
ALREADY_REVOKED = {
    "data": {
        "message": "Validation failed: This badge has already been revoked.",
        "errors": [{"attribute": "base", "messages": ["This badge has already been revoked."]}],
    },
    "metadata": {},
}


@pytest.fixture
def client() -> CredlyClient:
    return CredlyClient.create("tok", ORG, base_url=BASE, retry=RetryPolicy(max_attempts=2, backoff_base=0))


@responses.activate
def test_revoke_ok(client: CredlyClient) -> None:
    responses.put(f"{BADGES}/b1/revoke", json={"data": {"id": "b1", "state": "revoked"}})
    result = revoke_badge(client, "b1", "bounced", suppress_revoke_notification_email=True)
    assert (result.outcome, result.acted_on, result.ok) == ("revoked", "b1", True)
    assert json.loads(responses.calls[0].request.body) == {
        "reason": "bounced",
        "suppress_revoke_notification_email": True,
    }


@responses.activate
def test_revoke_already_revoked_is_done(client: CredlyClient) -> None:
    responses.put(f"{BADGES}/b1/revoke", json=ALREADY_REVOKED, status=422)
    result = revoke_badge(client, "b1", "bounced")
    assert result.outcome == "already_revoked"
    assert result.ok


@responses.activate
def test_revoke_replaced_names_the_current_version(client: CredlyClient) -> None:
    responses.put(f"{BADGES}/b1/revoke", json=REVOKE_REPLACED, status=422)
    result = revoke_badge(client, "b1", "bounced")
    assert result.outcome == "failed"
    assert not result.ok
    assert result.new_badge_id == "new-1"
    assert "new-1" in (result.detail or "")
    assert "follow_replacement" in (result.detail or "")
    assert len(responses.calls) == 1


@responses.activate
def test_revoke_follow_replacement_revokes_the_current_version(client: CredlyClient) -> None:
    responses.put(f"{BADGES}/b1/revoke", json=REVOKE_REPLACED, status=422)
    responses.put(f"{BADGES}/new-1/revoke", json={"data": {"id": "new-1", "state": "revoked"}})
    result = revoke_badge(client, "b1", "bounced", follow_replacement=True)
    assert (result.outcome, result.badge_id, result.acted_on) == ("revoked", "b1", "new-1")


@responses.activate
def test_revoke_other_422_fails_with_message(client: CredlyClient) -> None:
    body = {"data": {"message": "Validation failed: Reason can't be blank"}, "metadata": {}}
    responses.put(f"{BADGES}/b1/revoke", json=body, status=422)
    result = revoke_badge(client, "b1", "x")
    assert result.outcome == "failed"
    assert "Reason can't be blank" in (result.detail or "")


@responses.activate
def test_delete_ok_and_404_is_already_deleted(client: CredlyClient) -> None:
    responses.delete(f"{BADGES}/b1", status=204)
    responses.delete(f"{BADGES}/b2", json={"data": {"message": "not found"}}, status=404)
    assert delete_badge(client, "b1").outcome == "deleted"
    result = delete_badge(client, "b2")
    assert result.outcome == "already_deleted"
    assert result.ok


@responses.activate
def test_delete_replaced_finds_and_names_the_current_version(client: CredlyClient) -> None:
    responses.delete(f"{BADGES}/b1", json=DELETE_REPLACED, status=422)
    probe = responses.put(f"{BADGES}/b1/revoke", json=REVOKE_REPLACED, status=422)
    result = delete_badge(client, "b1")
    assert result.outcome == "failed"
    assert result.new_badge_id == "new-1"
    assert "delete the current version" in (result.detail or "")
    assert json.loads(probe.calls[0].request.body)["reason"] == PROBE_REASON


@responses.activate
def test_delete_follow_replacement_deletes_the_current_version(client: CredlyClient) -> None:
    responses.delete(f"{BADGES}/b1", json=DELETE_REPLACED, status=422)
    responses.put(f"{BADGES}/b1/revoke", json=REVOKE_REPLACED, status=422)
    current = responses.delete(f"{BADGES}/new-1", status=204)
    result = delete_badge(client, "b1", follow_replacement=True)
    assert (result.outcome, result.acted_on) == ("deleted", "new-1")
    assert current.call_count == 1


@responses.activate
def test_replace_ok(client: CredlyClient) -> None:
    responses.post(f"{BADGES}/b1/replace", json={"data": {"id": "new-9"}}, status=201)
    result = replace_badge(client, "b1", {"badge_template_id": "t", "issued_at": "2026-01-01T00:00:00Z"})
    assert (result.outcome, result.new_badge_id) == ("replaced", "new-9")


@responses.activate
def test_replace_already_replaced_fails_naming_current(client: CredlyClient) -> None:
    responses.post(f"{BADGES}/b1/replace", json=ALREADY_REPLACED, status=422)
    result = replace_badge(client, "b1", {"badge_template_id": "t", "issued_at": "2026-01-01T00:00:00Z"})
    assert result.outcome == "failed"
    assert result.new_badge_id == "new-1"


@responses.activate
def test_replace_on_task_retry_adopts_the_earlier_replacement(client: CredlyClient) -> None:
    responses.post(f"{BADGES}/b1/replace", json=ALREADY_REPLACED, status=422)
    result = replace_badge(
        client, "b1", {"badge_template_id": "t", "issued_at": "2026-01-01T00:00:00Z"}, retried=True
    )
    assert (result.outcome, result.new_badge_id, result.ok) == ("already_replaced", "new-1", True)


@responses.activate
def test_replace_unknown_outcome_then_already_replaced_is_done(client: CredlyClient) -> None:
    url = f"{BADGES}/b1/replace"
    responses.post(url, json={"data": {"message": "oops"}}, status=500)
    responses.post(url, json=ALREADY_REPLACED, status=422)
    result = replace_badge(client, "b1", {"badge_template_id": "t", "issued_at": "2026-01-01T00:00:00Z"})
    assert (result.outcome, result.new_badge_id) == ("already_replaced", "new-1")
    assert len(responses.calls) == 2


@responses.activate
def test_replace_follow_replacement(client: CredlyClient) -> None:
    responses.post(f"{BADGES}/b1/replace", json=ALREADY_REPLACED, status=422)
    responses.post(f"{BADGES}/new-1/replace", json={"data": {"id": "new-2"}}, status=201)
    result = replace_badge(
        client, "b1", {"badge_template_id": "t", "issued_at": "2026-01-01T00:00:00Z"}, follow_replacement=True
    )
    assert (result.outcome, result.acted_on, result.new_badge_id) == ("replaced", "new-1", "new-2")


@responses.activate
def test_run_actions_stops_after_threshold_and_accounts_for_all(client: CredlyClient) -> None:
    for i in range(5):
        responses.put(f"{BADGES}/b{i}/revoke", json=REVOKE_REPLACED, status=422)
    ids = [f"b{i}" for i in range(5)]
    results = run_actions(ids, lambda i: revoke_badge(client, ids[i], "r"), workers=1, max_failures=1)
    assert len(results) == 5
    assert not any(r.ok for r in results)
    assert sum("not attempted" in (r.detail or "") for r in results) == 3
    xcom = actions_xcom(results, max_rows=2)
    assert xcom["failed"] == 5
    assert xcom["total"] == 5
    assert xcom["results_truncated"] is True
    assert len(xcom["results"]) == 2
