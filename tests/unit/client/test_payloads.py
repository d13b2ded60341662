from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from airflow_provider_credly.client.payloads import (
    PayloadError,
    build_employee_payload,
    build_invitation_payload,
    build_issue_payload,
    build_organization_payload,
    build_replace_payload,
    build_revoke_payload,
)

VALID = {
    "recipient_email": " ada@example.com ",
    "issued_to_first_name": "Ada",
    "issued_to_last_name": "Lovelace",
    "badge_template_id": "t-1",
    "issued_at": datetime(2025, 8, 6, 9, 41, tzinfo=timezone(timedelta(hours=-5))),
}


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


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
@pytest.mark.parametrize(
    "field", ["recipient_email", "issued_to_first_name", "issued_to_last_name", "badge_template_id"]
)
def test_required_text_must_not_be_blank_or_whitespace(field, blank):
    with pytest.raises(PayloadError, match=f"missing required field\\(s\\) {field}"):
        build_issue_payload({**VALID, field: blank})


def test_replace_and_employee_required_text_must_not_be_whitespace():
    with pytest.raises(PayloadError, match="missing required field\\(s\\) badge_template_id"):
        build_replace_payload({"badge_template_id": "  ", "issued_at": date(2025, 1, 2)})
    with pytest.raises(PayloadError, match="missing required field\\(s\\) first_name, last_name"):
        build_employee_payload({"email": "a@b.co", "first_name": " ", "last_name": "\t"}, create=True)
    # an update may leave the names out, but blanking them would erase what Credly requires
    assert build_employee_payload({"team": ""}, create=False) == {"team": ""}
    with pytest.raises(PayloadError, match="first_name must not be empty"):
        build_employee_payload({"first_name": "  "}, create=False)


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("a" * 65 + "@example.com", "local part longer than 64"),
        ("a@" + "b" * 250 + ".com", "longer than 254"),
        ("ada lovelace@example.com", "not an email address"),
        ("ada@exa mple.com", "not an email address"),
        ("ada@example", "not an email address"),
        ("ada@example..com", "empty label"),
        ("ada@.example.com", "empty label"),
        ("ada@example.com.", "empty label"),
        ("ada@@example.com", "not an email address"),
    ],
)
def test_emails_no_mail_system_accepts_are_refused(email, reason):
    with pytest.raises(PayloadError, match=reason) as info:
        build_issue_payload({**VALID, "recipient_email": email})
    assert "recipient_email" in str(info.value)
    with pytest.raises(PayloadError, match=reason):
        build_employee_payload({"email": email, "first_name": "A", "last_name": "B"}, create=True)


def test_emails_at_the_rfc_5321_limits_are_accepted():
    local = "a" * 64
    longest = local + "@" + "b" * (254 - 64 - 1 - 4) + ".com"
    assert len(longest) == 254
    assert build_issue_payload({**VALID, "recipient_email": longest})["recipient_email"] == longest


def test_expires_at_must_be_strictly_after_issued_at():
    issued = datetime(2025, 8, 6, 14, 41, tzinfo=UTC)
    same_instant = "2025-08-06 09:41:00 -0500"
    for expires in (issued, same_instant, issued - timedelta(days=1)):
        with pytest.raises(PayloadError, match="expires_at .* must be after issued_at"):
            build_issue_payload({**VALID, "issued_at": issued, "expires_at": expires})
        with pytest.raises(PayloadError, match="must be after issued_at"):
            build_replace_payload({"badge_template_id": "t", "issued_at": issued, "expires_at": expires})
    later = build_issue_payload({**VALID, "issued_at": issued, "expires_at": issued + timedelta(seconds=1)})
    assert later["expires_at"] == "2025-08-06 14:41:01 +0000"
    assert build_issue_payload({**VALID, "expires_at": False})["expires_at"] is False


def test_expires_at_is_checked_against_a_defaulted_issued_at():
    from airflow_provider_credly.issuing.bulk import InvalidRowsError
    from airflow_provider_credly.issuing.credly import validate_rows

    rows = [
        {**VALID, "issued_at": None, "expires_at": "2025-01-01"},
        {**VALID, "issued_at": None, "expires_at": "2027-01-01"},
    ]
    with pytest.raises(InvalidRowsError) as info:
        validate_rows(rows, {"issued_at": date(2026, 1, 1)})
    assert list(info.value.problems) == [0]
    assert "row 0: expires_at" in str(info.value)


def test_bulk_rows_report_every_bad_row_and_field_at_once():
    from airflow_provider_credly.issuing.bulk import InvalidRowsError
    from airflow_provider_credly.issuing.credly import validate_rows

    rows = [
        VALID,
        {**VALID, "issued_to_last_name": "   "},
        {**VALID, "recipient_email": "x" * 65 + "@example.com"},
        {**VALID, "evidence": [{"type": "UrlEvidence", "name": "Proof"}]},
        {**VALID, "expires_at": VALID["issued_at"]},
    ]
    with pytest.raises(InvalidRowsError) as info:
        validate_rows(rows)
    problems = info.value.problems
    assert sorted(problems) == [1, 2, 3, 4]
    assert "issued_to_last_name" in problems[1][0]
    assert "recipient_email" in problems[2][0]
    assert "evidence[0] (UrlEvidence) needs value" in problems[3]
    assert "expires_at" in problems[4][0]


EVIDENCE_OK = [
    {
        "type": "KeyValueGroupEvidence",
        "name": "Custom Evidence",
        "values": [{"type": "KeyValuePairEvidence", "key": "Testing Center", "value": "Minneapolis"}],
    },
    {"type": "PlainTextEvidence", "title": "Evidence", "description": "The evidence is clear."},
    {"type": "UrlEvidence", "value": "http://www.example.com/evidence", "name": "Evidence"},
    {"type": "IdEvidence", "title": "Drivers License Example", "description": "AAABBBCCC"},
]


def test_each_documented_evidence_type_with_its_fields_is_accepted():
    assert build_issue_payload({**VALID, "evidence": EVIDENCE_OK})["evidence"] == EVIDENCE_OK


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"type": "PlainTextEvidence", "title": "T"}, "evidence[0] (PlainTextEvidence) needs description"),
        ({"type": "PlainTextEvidence", "title": " ", "description": "d"}, "needs title"),
        ({"type": "IdEvidence", "description": "d"}, "evidence[0] (IdEvidence) needs title"),
        ({"type": "UrlEvidence", "value": "http://x.org"}, "evidence[0] (UrlEvidence) needs name"),
        ({"type": "UrlEvidence", "name": "n", "value": ""}, "needs value"),
        ({"type": "KeyValueGroupEvidence", "name": "n"}, "(KeyValueGroupEvidence) needs values"),
        ({"type": "KeyValueGroupEvidence", "name": "n", "values": []}, "needs values"),
        ({"type": "KeyValueGroupEvidence", "name": "n", "values": "k=v"}, "values must be a list"),
        (
            {"type": "KeyValueGroupEvidence", "name": "n", "values": [{"key": "k", "value": "v"}]},
            "evidence[0].values[0] needs type KeyValuePairEvidence",
        ),
        (
            {
                "type": "KeyValueGroupEvidence",
                "name": "n",
                "values": [{"type": "KeyValuePairEvidence", "key": "k"}],
            },
            "evidence[0].values[0] needs value",
        ),
    ],
)
def test_evidence_items_need_their_types_fields(item, message):
    with pytest.raises(PayloadError) as info:
        build_issue_payload({**VALID, "evidence": [item]})
    assert message in str(info.value)
    with pytest.raises(PayloadError):
        build_replace_payload({"badge_template_id": "t", "issued_at": date(2025, 1, 2), "evidence": [item]})


def test_replace_can_send_a_blank_expires_at_for_the_template_default():
    base = {"badge_template_id": "t", "issued_at": date(2025, 1, 2)}
    assert build_replace_payload({**base, "expires_at": ""})["expires_at"] == ""
    assert build_replace_payload({**base, "expires_at": "  "})["expires_at"] == ""
    assert "expires_at" not in build_replace_payload({**base, "expires_at": None})
    assert build_replace_payload({**base, "expires_at": False})["expires_at"] is False
    with pytest.raises(PayloadError, match="expires_at"):
        build_issue_payload({**VALID, "expires_at": ""})  # issue: leave it out (None) for the default
