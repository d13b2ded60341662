"""Exactly-once award logic (mocked HTTP): validation, duplicate resolution, unknown outcomes, revoke."""

from __future__ import annotations

import json

import pytest
import responses

from airflow_provider_credly.actions.canvas import revoke_assertions
from airflow_provider_credly.client import HttpClient, RetryPolicy
from airflow_provider_credly.client.canvas import (
    CanvasCredentialsClient,
    CanvasTokenAuth,
    canvas_error_details,
)
from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.issuing.canvas import (
    CanvasAssertionIssuer,
    run_bulk_award,
    validate_assertion_rows,
)

BASE = "https://api.badgr.io"
POST_URL = f"{BASE}/v2/badgeclasses/B1/assertions"
DUP = {
    "status": {"success": False, "description": "Bad Request"},
    "validationErrors": ["A previous award of this badge already exists for this recipient."],
}


def make_client() -> CanvasCredentialsClient:
    http = HttpClient(
        BASE,
        retry=RetryPolicy(max_attempts=3, backoff_base=0.0, jitter=0.0),
        sleep=lambda _s: None,
        error_parser=canvas_error_details,
        validation_statuses=frozenset({400}),
    )
    http.auth = CanvasTokenAuth(http, "u@example.edu", "pw")
    return CanvasCredentialsClient(http)


def assertion(eid: str, created: str = "2030-01-01T00:00:00Z", **extra):
    return {
        "entityId": eid,
        "badgeclass": "B1",
        "createdAt": created,
        "recipient": {"identity": "sha256$x", "plaintextIdentity": "r@example.edu"},
        "revoked": False,
        **extra,
    }


def env(*items):
    return {"status": {"success": True}, "result": list(items)}


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/o/token", json={"access_token": "t", "expires_in": 3600})
        yield rsps


ROW = {"badgeclass": "B1", "recipient_identity": "r@example.edu"}


def posts(api):
    return [
        json.loads(c.request.body)
        for c in api.calls
        if c.request.method == "POST" and "/v2/" in c.request.url
    ]


def test_validate_rows_aliases_defaults_and_all_problems():
    rows = validate_assertion_rows(
        [{"email": "a@x.org"}, {"recipient_email": "b@x.org", "badgeclass": "B2"}], {"badge_class_id": "B1"}
    )
    assert rows == [
        {"badgeclass": "B1", "recipient_identity": "a@x.org"},
        {"badgeclass": "B2", "recipient_identity": "b@x.org"},
    ]
    with pytest.raises(InvalidRowsError) as bad:
        validate_assertion_rows(
            [{"recipient_email": "x"}, "nope", {"recipient_email": "c@x.org", "color": "red"}]
        )
    assert set(bad.value.problems) == {0, 1, 2}
    assert any("badgeclass is required" in p for p in bad.value.problems[0])
    assert "unknown field 'color'" in bad.value.problems[2]


def test_award_sends_allow_duplicate_awards_false(api):
    api.post(POST_URL, status=201, json=env(assertion("A1")))
    result = CanvasAssertionIssuer(make_client()).issue(ROW)
    assert (result.outcome, result.badge_id) == ("issued", "A1")
    assert posts(api)[0]["allowDuplicateAwards"] is False


def test_duplicate_on_first_attempt_is_already_existed(api):
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("OLD", "2020-01-01T00:00:00Z")))
    result = CanvasAssertionIssuer(make_client()).issue(ROW)
    assert (result.outcome, result.badge_id) == ("already_existed", "OLD")
    fail = CanvasAssertionIssuer(make_client(), if_exists="fail").issue(ROW)
    assert fail.outcome == "failed"
    assert "already exists: OLD" in fail.reason


def test_lost_response_then_duplicate_is_issued_exactly_once(api):
    api.post(POST_URL, status=502)
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("NEW")))
    issuer = CanvasAssertionIssuer(make_client(), sleep=lambda _s: None)
    result = issuer.issue(ROW)
    assert (result.outcome, result.badge_id) == ("issued", "NEW")
    assert issuer.recovered == 1
    assert len(posts(api)) == 2  # one repeat, refused by the server
    lookup = next(c for c in api.calls if c.request.method == "GET")
    assert "recipient=r%40example.edu" in lookup.request.url
    assert "include_expired=true" in lookup.request.url


def test_non_duplicate_400_fails_the_row(api):
    api.post(POST_URL, status=400, json={"fieldErrors": {"recipient": ["Invalid."]}})
    result = CanvasAssertionIssuer(make_client()).issue(ROW)
    assert result.outcome == "failed"
    assert "recipient: Invalid." in result.reason


def test_allowing_duplicates_looks_up_before_repeating(api):
    api.post(POST_URL, status=503)
    api.get(POST_URL, json=env(assertion("NEW")))
    issuer = CanvasAssertionIssuer(
        make_client(), allow_duplicate_awards=True, sleep=lambda _s: None, clock=lambda: 1893456000.0
    )
    result = issuer.issue(ROW)
    assert (result.outcome, result.badge_id) == ("issued", "NEW")
    assert len(posts(api)) == 1
    assert posts(api)[0]["allowDuplicateAwards"] is True


def test_bulk_two_rows_same_recipient_share_one_assertion(api):
    api.post(POST_URL, status=201, json=env(assertion("A1")))
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("A1")))
    report = run_bulk_award(make_client(), [ROW, ROW], workers=1)
    assert report.outcomes == ["issued", "already_existed"]
    assert report.badge_ids == ["A1", "A1"]


def test_revoke_outcomes(api):
    api.delete(f"{BASE}/v2/assertions/A1", json=env(assertion("A1", revoked=True)))
    api.delete(
        f"{BASE}/v2/assertions/A2", status=400, json={"validationErrors": ["Assertion is already revoked."]}
    )
    api.delete(f"{BASE}/v2/assertions/A3", status=404, json={})
    results = revoke_assertions(make_client(), ["A1", "A2", "A3"], "why", workers=1, max_failures=5)
    assert [r.outcome for r in results] == ["revoked", "already_revoked", "failed"]
    assert "permission" in results[2].detail
    first = next(c for c in api.calls if c.request.method == "DELETE")
    assert json.loads(first.request.body) == {"revocation_reason": "why"}


@pytest.mark.parametrize(
    "message",
    [
        "A previous award of this badge already exists for this recipient.",
        "a PREVIOUS AWARD OF THIS BADGE ALREADY EXISTS for this recipient.",
    ],
)
def test_duplicate_refusal_wording_is_matched_case_insensitively(message):
    from airflow_provider_credly.client.canvas import is_duplicate_award_error
    from airflow_provider_credly.client.errors import ValidationError

    assert is_duplicate_award_error(ValidationError("Bad Request", errors=[{"messages": [message]}]))


@pytest.mark.parametrize(
    "body",
    [
        {"validationErrors": ["Duplicate evidence URL."]},
        {"fieldErrors": {"recipient": ["This recipient already has a pending invitation."]}},
        {"validationErrors": ["Badge class already awarded limit reached."]},
        {"errorCode": "duplicate", "validationErrors": ["Expires must be after issuedOn."]},
    ],
)
def test_other_400_fails_with_the_message_even_when_an_assertion_exists(api, body):
    api.post(POST_URL, status=400, json=body)
    api.get(POST_URL, json=env(assertion("OLD", "2020-01-01T00:00:00Z")))
    result = CanvasAssertionIssuer(make_client()).issue(ROW)
    assert result.outcome == "failed"
    assert result.badge is None
    assert body.get("validationErrors", [""])[0] in result.reason
    assert not [c for c in api.calls if c.request.method == "GET"]


@pytest.mark.parametrize(("if_exists", "outcome"), [("return", "already_existed"), ("fail", "failed")])
def test_lost_refusal_then_refusal_of_an_old_award_is_not_issued(api, if_exists, outcome):
    api.post(POST_URL, status=502)  # the server refused (duplicate), the answer was lost
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("OLD", "2020-01-01T00:00:00Z")))
    issuer = CanvasAssertionIssuer(make_client(), if_exists=if_exists, sleep=lambda _s: None)
    result = issuer.issue(ROW)
    assert result.outcome == outcome
    assert result.badge_id == "OLD"
    if if_exists == "fail":
        assert "already exists: OLD" in result.reason
    assert issuer.recovered == 0


@pytest.mark.parametrize("if_exists", ["return", "fail"])
def test_retry_refusal_of_the_earlier_trys_award_is_issued(api, if_exists):
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("MINE", "2026-03-01T10:00:05Z")))
    first_try = 1772359200.0  # 2026-03-01T10:00:00Z
    issuer = CanvasAssertionIssuer(
        make_client(), if_exists=if_exists, since=first_try, clock=lambda: first_try + 600
    )
    result = issuer.issue(ROW)
    assert (result.outcome, result.badge_id) == ("issued", "MINE")


def test_retry_refusal_of_an_award_older_than_the_task_still_fails(api):
    api.post(POST_URL, status=400, json=DUP)
    api.get(POST_URL, json=env(assertion("OLD", "2026-03-01T09:00:00Z")))
    first_try = 1772359200.0  # 2026-03-01T10:00:00Z, an hour after the award
    issuer = CanvasAssertionIssuer(make_client(), if_exists="fail", since=first_try, clock=lambda: first_try)
    result = issuer.issue(ROW)
    assert result.outcome == "failed"
    assert "already exists: OLD" in result.reason


def test_rows_of_one_recipient_share_a_key_case_insensitively():
    issuer = CanvasAssertionIssuer(make_client())
    assert issuer.key(ROW) == issuer.key({**ROW, "recipient_identity": " R@Example.edu "})
    assert issuer.key(ROW) != issuer.key({**ROW, "badgeclass": "B2"})
