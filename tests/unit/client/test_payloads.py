from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_credly.client.payloads import (
    PayloadError,
    build_employee_payload,
    build_invitation_payload,
    build_issue_payload,
    build_organization_payload,
    build_replace_payload,
    build_revoke_payload,
    format_credly_datetime,
)

VALID = {
    "recipient_email": " ada@example.com ",
    "issued_to_first_name": "Ada",
    "issued_to_last_name": "Lovelace",
    "badge_template_id": "t-1",
    "issued_at": datetime(2025, 8, 6, 9, 41, tzinfo=timezone(timedelta(hours=-5))),
}


def test_timestamps_in_the_documented_form():
    assert format_credly_datetime(datetime(2025, 8, 6, 9, 41, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2025-08-06 09:41:00 -0500"
    )
    assert format_credly_datetime(datetime(2025, 8, 6, 9, 41)) == "2025-08-06 09:41:00 +0000"  # naive = UTC
    assert (
        format_credly_datetime(pendulum.datetime(2025, 8, 6, 14, 41, tz="UTC")) == "2025-08-06 14:41:00 +0000"
    )
    assert format_credly_datetime(date(2025, 8, 6)) == "2025-08-06 00:00:00 +0000"
    assert format_credly_datetime("2025-08-06T14:41:00Z") == "2025-08-06 14:41:00 +0000"
    assert format_credly_datetime("2025-08-06 09:41:00 -0500") == "2025-08-06 09:41:00 -0500"
    with pytest.raises(ValueError, match="not a timestamp"):
        format_credly_datetime("yesterday")


def test_issue_payload_is_normalised():
    body = build_issue_payload({**VALID, "expires_at": False, "locale": "fr", "issuer_earner_id": 42})
    assert body["issued_at"] == "2025-08-06 09:41:00 -0500"
    assert body["recipient_email"] == "ada@example.com"
    assert body["expires_at"] is False  # "never expires" is kept as false
    assert body["issuer_earner_id"] == "42"


def test_issue_payload_reports_every_problem_at_once():
    with pytest.raises(PayloadError) as info:
        build_issue_payload(
            {
                "recipient_email": "not-an-email",
                "issued_to_first_name": "A",
                "issued_at": "whenever",
                "locale": "xx",
                "colour": "red",
                "evidence": [{"type": "Video"}],
                "suppress_badge_notification_email": "no",
            }
        )
    problems = " | ".join(info.value.problems)
    for needle in (
        "unknown field(s) colour",
        "missing required field(s) issued_to_last_name, badge_template_id",
        "issued_at",
        "not an email address",
        "locale 'xx'",
        "evidence[0]",
        "suppress_badge_notification_email",
    ):
        assert needle in problems
    assert isinstance(info.value, ValueError)


def test_replace_needs_only_template_and_issued_at():
    body = build_replace_payload(
        {"badge_template_id": "t", "issued_at": date(2025, 1, 2), "notification_message": "hi"}
    )
    assert body == {
        "badge_template_id": "t",
        "issued_at": "2025-01-02 00:00:00 +0000",
        "notification_message": "hi",
    }
    with pytest.raises(PayloadError, match="issued_at"):
        build_replace_payload({"badge_template_id": "t"})


def test_revoke_needs_a_reason():
    assert build_revoke_payload(" bounced ", True) == {
        "reason": "bounced",
        "suppress_revoke_notification_email": True,
    }
    with pytest.raises(PayloadError, match="reason"):
        build_revoke_payload("  ")


def test_employee_payloads():
    assert build_employee_payload(
        {"email": "a@b.co", "first_name": "A", "last_name": "B", "zip_code": 55437}, create=True
    ) == {
        "email": "a@b.co",
        "first_name": "A",
        "last_name": "B",
        "zip_code": "55437",
    }
    with pytest.raises(PayloadError, match="missing required field"):
        build_employee_payload({"email": "a@b.co"}, create=True)
    with pytest.raises(PayloadError, match="unknown field"):
        build_employee_payload({"email": "a@b.co", "team": "x"}, create=False)  # email cannot be updated


def test_invitation_payloads():
    assert build_invitation_payload(["e1"], "external_id", ["pending"]) == {
        "employee_list": ["e1"],
        "list_type": "external_id",
        "statuses": ["pending"],
    }
    assert build_invitation_payload() == {}
    with pytest.raises(PayloadError, match="list_type"):
        build_invitation_payload(["e1"])
    with pytest.raises(PayloadError, match="statuses"):
        build_invitation_payload(statuses=["accepted"])


def test_organization_payload():
    assert build_organization_payload({"bio": "Since 1994"}) == {"bio": "Since 1994"}
    with pytest.raises(PayloadError, match="nothing to update"):
        build_organization_payload({})
    with pytest.raises(PayloadError, match="unknown field"):
        build_organization_payload({"vanity_slug": "x"})
