"""Tests of the local Credly API emulator (real loopback HTTP).

Note: generating 1,000,000 badges is deliberately not tested here (it takes seconds); it belongs to the
benchmarks (see the emulator report: ``EmulatorState(badges=1_000_000)``).
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_credly.testing import (
    MSG_ALREADY_REPLACED,
    MSG_ALREADY_REVOKED,
    MSG_DELETE_REPLACED,
    MSG_REVOKE_REPLACED,
    EmulatorState,
    FakeClock,
    RunningEmulator,
    run_emulator,
    spawn_emulator_process,
)

UTC = UTC
MINIMAL_KEYS = {
    "id", "issued_to", "issued_to_first_name", "issued_to_middle_name", "issued_to_last_name",
    "issuer_earner_id", "locale", "public", "recipient_email", "state", "badge_url", "updated_at",
    "created_at", "expires_at", "issued_at", "state_updated_at", "badge_template", "user",
}  # fmt: skip
HV_DEFAULT_KEYS = MINIMAL_KEYS | {
    "replacement_badge_id", "revocation_reason", "suppress_badge_notification_email", "issued_at_date",
    "expires_at_date", "created_by", "issuer",
}  # fmt: skip


def session(emu: Any, token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.auth = (token or emu.token, "")
    return s


def badge_payload(template_id: str, email: str = "new.person@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "recipient_email": email,
        "issued_to_first_name": "New",
        "issued_to_last_name": "Person",
        "badge_template_id": template_id,
        "issued_at": "2025-08-06 09:41:00 -0500",
        **extra,
    }


def all_pages(s: requests.Session, url: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, Any] | None = params
    while next_url:
        resp = s.get(next_url, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items.extend(body["data"])
        next_url, query = body["metadata"]["next_page_url"], None
    return items


@pytest.fixture
def emu(credly_emulator: RunningEmulator) -> RunningEmulator:
    return credly_emulator


@pytest.fixture
def s(emu: RunningEmulator) -> requests.Session:
    return session(emu)


def strict_template(emu: RunningEmulator) -> str:
    return next(t.id for t in emu.state.templates if not t.allow_duplicates)


# ---------------------------------------------------------------------- auth, orgs, tokens, events
def test_auth_is_required_and_checked(emu: RunningEmulator) -> None:
    url = f"{emu.org_url}/badges"
    missing = requests.get(url)
    wrong = session(emu, token="nope").get(url)
    as_password = requests.get(url, auth=("", emu.token))
    assert missing.status_code == wrong.status_code == as_password.status_code == 401
    assert set(missing.json()) == {"data", "metadata"}
    assert missing.json()["data"]["message"]
    assert missing.headers["Content-Type"] == "application/json; charset=utf-8"
    assert session(emu).get(url).status_code == 200


def test_unknown_org_badge_and_route_are_404(s: requests.Session, emu: RunningEmulator) -> None:
    assert (
        s.get(f"{emu.base_url}/organizations/00000000-0000-4000-8000-000000000000/badges").status_code == 404
    )
    assert s.get(f"{emu.org_url}/badges/00000000-0000-4000-8000-000000000000").status_code == 404
    assert s.get(f"{emu.org_url}/nothing_here").status_code == 404
    assert s.patch(f"{emu.org_url}/badges").status_code == 405


def test_organizations_tokens_and_update(s: requests.Session, emu: RunningEmulator) -> None:
    orgs = s.get(f"{emu.base_url}/organizations").json()
    assert [o["id"] for o in orgs["data"]] == [emu.org_id]
    assert orgs["metadata"]["total_count"] == 1
    updated = s.put(emu.org_url, json={"name": "Renamed Org", "bio": "x"}).json()["data"]
    assert updated["name"] == "Renamed Org"
    assert s.get(emu.org_url).json()["data"]["name"] == "Renamed Org"
    # Listed in clear text as Credly does (the client masks them): the connection's token and two others.
    tokens = s.get(f"{emu.org_url}/authorization_tokens").json()
    assert [t["token"] for t in tokens["data"]][0] == emu.token
    assert len({t["token"] for t in tokens["data"]}) == tokens["metadata"]["total_count"] == 3
    own = tokens["data"][0]
    assert (own["read_enabled"], own["write_enabled"], own["delete_enabled"]) == (True, True, True)


def test_events_are_appended_for_every_badge_mutation(s: requests.Session, emu: RunningEmulator) -> None:
    created = s.post(f"{emu.org_url}/badges", json=badge_payload(strict_template(emu))).json()["data"]
    replaced = s.post(
        f"{emu.org_url}/badges/{created['id']}/replace",
        json={"badge_template_id": created["badge_template"]["id"], "issued_at": "2025-08-07T10:00:00Z"},
    ).json()["data"]
    s.put(f"{emu.org_url}/badges/{replaced['id']}/revoke", json={"reason": "oops"})
    assert s.delete(f"{emu.org_url}/badges/{replaced['id']}").status_code == 204
    events = s.get(f"{emu.org_url}/events").json()
    types = [e["event_type"] for e in events["data"]]
    assert types == ["badge.created", "badge.replaced", "badge.revoked", "badge.deleted"]
    assert events["data"][2]["badge"]["state"] == "revoked"
    assert events["data"][0]["organization_id"] == emu.org_id
    one = s.get(f"{emu.org_url}/events/{events['data'][1]['id']}").json()["data"]
    assert one["badge"]["id"] == replaced["id"]
    assert s.get(f"{emu.org_url}/events/missing").status_code == 404


# ---------------------------------------------------------------------- issuing
def test_issue_badge_returns_201_location_and_full_badge(s: requests.Session, emu: RunningEmulator) -> None:
    emu.state.clock = FakeClock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    resp = s.post(f"{emu.org_url}/badges", json=badge_payload(strict_template(emu), issuer_earner_id="X1"))
    assert resp.status_code == 201, resp.text
    badge = resp.json()["data"]
    assert resp.json()["metadata"] == {}
    assert resp.headers["Location"].endswith(f"/organizations/{emu.org_id}/badges/{badge['id']}")
    assert badge["state"] == "pending"
    assert badge["created_at"] == badge["updated_at"] == "2026-03-04T05:06:07.000Z"
    assert badge["issued_at"] == "2025-08-06T14:41:00.000Z"
    assert badge["issued_at_date"] == "2025-08-06"
    assert badge["state_updated_at"] is None
    assert badge["issuer_earner_id"] == "X1"
    assert badge["badge_template"]["id"] == strict_template(emu)
    assert s.get(resp.headers["Location"]).json()["data"]["id"] == badge["id"]
    again = s.post(
        f"{emu.org_url}/badges", json=badge_payload(strict_template(emu), email="other@example.com")
    )
    assert again.json()["data"]["user"]["id"] != badge["user"]["id"]
    assert emu.state.issue_count == 2


def test_issue_accepts_iso8601_and_reports_missing_fields(s: requests.Session, emu: RunningEmulator) -> None:
    iso = badge_payload(strict_template(emu), issued_at="2025-08-06T23:30:00+02:00")
    assert s.post(f"{emu.org_url}/badges", json=iso).json()["data"]["issued_at"] == "2025-08-06T21:30:00.000Z"
    resp = s.post(f"{emu.org_url}/badges", json={"badge_template_id": strict_template(emu)})
    assert resp.status_code == 422
    body = resp.json()
    assert body["metadata"] == {}
    assert body["data"]["message"] == (
        "Validation failed: Recipient email can't be blank, Issued to first name can't be blank, "
        "Issued to last name can't be blank, Issued at can't be blank"
    )
    assert body["data"]["errors"][0] == {
        "attribute": "recipient_email",
        "attribute_label": "Recipient email",
        "messages": ["can't be blank"],
    }
    bad = s.post(f"{emu.org_url}/badges", json=badge_payload("no-such-template", issued_at="yesterday"))
    assert bad.status_code == 422
    assert (
        bad.json()["data"]["message"] == "Validation failed: Badge template not found, Issued at is invalid"
    )


def test_duplicate_rule(s: requests.Session, emu: RunningEmulator) -> None:
    tpl = strict_template(emu)
    first = s.post(
        f"{emu.org_url}/badges", json=badge_payload(tpl, email="dup@example.com", issuer_earner_id="D1")
    )
    assert first.status_code == 201
    expected = {
        "data": {
            "message": "Validation failed: User already has this badge",
            "errors": [
                {"attribute": "user", "attribute_label": "User", "messages": ["already has this badge"]}
            ],
        },
        "metadata": {},
    }
    same_email = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="DUP@example.com"))
    same_earner_id = s.post(
        f"{emu.org_url}/badges", json=badge_payload(tpl, email="x@example.com", issuer_earner_id="D1")
    )
    assert (same_email.status_code, same_email.json()) == (422, expected)
    assert (same_earner_id.status_code, same_earner_id.json()) == (422, expected)
    other_template = next(t.id for t in emu.state.templates if t.id != tpl and not t.allow_duplicates)
    assert (
        s.post(
            f"{emu.org_url}/badges", json=badge_payload(other_template, email="dup@example.com")
        ).status_code
        == 201
    )
    dup_ok = next(t.id for t in emu.state.templates if t.allow_duplicates)
    codes = [
        s.post(f"{emu.org_url}/badges", json=badge_payload(dup_ok, email="d2@example.com")).status_code
        for _ in "ab"
    ]
    assert codes == [201, 201]
    seeded = emu.state.store.email(0), emu.state.templates[emu.state.store.template[0]]
    if not seeded[1].allow_duplicates:
        assert (
            s.post(f"{emu.org_url}/badges", json=badge_payload(seeded[1].id, email=seeded[0])).status_code
            == 422
        )
    s.put(f"{emu.org_url}/badges/{first.json()['data']['id']}/revoke", json={"reason": "gone"})
    assert (
        s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="dup@example.com")).status_code == 201
    )


# ---------------------------------------------------------------------- replace / revoke / delete
def test_replace_rules(s: requests.Session, emu: RunningEmulator) -> None:
    tpl = strict_template(emu)
    old = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="r@example.com")).json()["data"]
    body = {"badge_template_id": tpl, "issued_at": "2025-09-01 10:00:00 +0000"}
    resp = s.post(f"{emu.org_url}/badges/{old['id']}/replace", json=body)
    assert resp.status_code == 201
    assert "Location" in resp.headers
    new = resp.json()["data"]
    assert new["replaces_badge_id"] == old["id"]
    assert new["recipient_email"] == "r@example.com"
    stored = emu.state.get_badge(old["id"])
    assert stored is not None
    assert stored["replacement_badge_id"] == new["id"]
    newest = s.post(f"{emu.org_url}/badges/{new['id']}/replace", json=body).json()["data"]
    again = s.post(f"{emu.org_url}/badges/{old['id']}/replace", json=body)
    assert again.status_code == 422
    assert again.json() == {
        "data": {
            "message": f"Validation failed: {MSG_ALREADY_REPLACED}",
            "errors": [{"attribute": "base", "attribute_label": "Base", "messages": [MSG_ALREADY_REPLACED]}],
        },
        "metadata": {"current_badge_id": newest["id"]},
    }
    listed = {b["id"] for b in all_pages(s, f"{emu.org_url}/badges", filter="recipient_email::r@example.com")}
    assert listed == {newest["id"]}
    missing = s.post(f"{emu.org_url}/badges/{newest['id']}/replace", json={})
    assert missing.status_code == 422
    assert {e["attribute"] for e in missing.json()["data"]["errors"]} == {"badge_template_id", "issued_at"}


def test_replace_email_change_only_when_pending(s: requests.Session, emu: RunningEmulator) -> None:
    tpl = strict_template(emu)
    pending = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="p@example.com")).json()["data"]
    body = {
        "badge_template_id": tpl,
        "issued_at": "2025-09-01T10:00:00Z",
        "recipient_email": "p2@example.com",
    }
    moved = s.post(f"{emu.org_url}/badges/{pending['id']}/replace", json=body)
    assert moved.status_code == 201
    assert moved.json()["data"]["recipient_email"] == "p2@example.com"
    emu.state.set_badge_state(moved.json()["data"]["id"], "accepted")
    body["recipient_email"] = "p3@example.com"
    refused = s.post(f"{emu.org_url}/badges/{moved.json()['data']['id']}/replace", json=body)
    assert refused.status_code == 422
    assert refused.json()["data"]["errors"][0]["attribute"] == "recipient_email"


def test_revoke_rules(s: requests.Session, emu: RunningEmulator) -> None:
    emu.state.clock = clock = FakeClock(datetime(2026, 5, 4, tzinfo=UTC))
    tpl = strict_template(emu)
    badge = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="v@example.com")).json()["data"]
    url = f"{emu.org_url}/badges/{badge['id']}/revoke"
    no_reason = s.put(url, json={"suppress_revoke_notification_email": True})
    assert no_reason.status_code == 422
    assert no_reason.json()["data"]["message"] == "Validation failed: Reason can't be blank"
    clock.advance(days=1)
    revoked = s.put(url, json={"reason": "Check bounced"})
    assert revoked.status_code == 200
    data = revoked.json()["data"]
    assert (data["state"], data["revocation_reason"]) == ("revoked", "Check bounced")
    assert data["state_updated_at"] == data["updated_at"] == "2026-05-05T00:00:00.000Z"
    twice = s.put(url, json={"reason": "again"})
    assert twice.status_code == 422
    assert twice.json()["data"]["message"] == f"Validation failed: {MSG_ALREADY_REVOKED}"
    other = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="w@example.com")).json()["data"]
    body = {"badge_template_id": tpl, "issued_at": "2025-09-01T10:00:00Z"}
    new = s.post(f"{emu.org_url}/badges/{other['id']}/replace", json=body).json()["data"]
    refused = s.put(f"{emu.org_url}/badges/{other['id']}/revoke", json={"reason": "x"})
    assert refused.status_code == 422
    assert refused.json() == {
        "data": {
            "message": f"Validation failed: {MSG_REVOKE_REPLACED}",
            "errors": [{"attribute": "base", "attribute_label": "Base", "messages": [MSG_REVOKE_REPLACED]}],
        },
        "metadata": {"current_badge_id": new["id"]},
    }


def test_delete_rules(s: requests.Session, emu: RunningEmulator) -> None:
    tpl = strict_template(emu)
    old = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="del@example.com")).json()["data"]
    body = {"badge_template_id": tpl, "issued_at": "2025-09-01T10:00:00Z"}
    new = s.post(f"{emu.org_url}/badges/{old['id']}/replace", json=body).json()["data"]
    before = emu.state.badges_count()
    refused = s.delete(f"{emu.org_url}/badges/{old['id']}")
    assert refused.status_code == 422
    assert refused.json() == {"data": {"message": MSG_DELETE_REPLACED}, "metadata": None}
    assert s.delete(f"{emu.org_url}/badges/{new['id']}").status_code == 204
    assert emu.state.badges_count() == before - 2
    assert emu.state.badges_count(include_deleted=True) == before
    for bid in (old["id"], new["id"]):
        assert s.get(f"{emu.org_url}/badges/{bid}").status_code == 404
        assert s.delete(f"{emu.org_url}/badges/{bid}").status_code == 404
    assert emu.state.find_badges(recipient_email="del@example.com") == []


# ---------------------------------------------------------------------- listing
def test_page_number_pagination_metadata(s: requests.Session, emu: RunningEmulator) -> None:
    url = f"{emu.org_url}/badges"
    params: dict[str, Any] = {"page": 2, "filter": "public::true", "sort": "-issued_at"}
    body = s.get(url, params=params).json()
    meta = body["metadata"]
    total = sum(1 for b in emu.state.find_badges(public=True) if b["replacement_badge_id"] is None)
    assert meta["count"] == len(body["data"]) == 50
    assert (meta["current_page"], meta["total_count"], meta["per"]) == (2, total, 50)
    assert meta["total_pages"] == -(-total // 50) == 3
    for key, page in (("previous_page_url", 1), ("next_page_url", 3)):
        parts = urlsplit(meta[key])
        assert f"{parts.scheme}://{parts.netloc}" == emu.root_url
        assert parse_qs(parts.query) == {
            "page": [str(page)],
            "filter": ["public::true"],
            "sort": ["-issued_at"],
        }
    last = s.get(meta["next_page_url"]).json()["metadata"]
    assert last["next_page_url"] is None
    assert last["count"] == total - 100
    first = s.get(url, params={"per": 500}).json()["metadata"]
    assert first["per"] == 50
    assert first["previous_page_url"] is None
    small = s.get(url, params={"per": 7, "page": 3}).json()
    assert len(small["data"]) == 7
    assert small["metadata"]["total_pages"] == -(-120 // 7)
    assert s.get(url, params={"page": "zero"}).status_code == 400
    assert s.get(url, params={"page": 0}).status_code == 400


def test_employees_and_events_lists_paginate(s: requests.Session, emu: RunningEmulator) -> None:
    body = s.get(f"{emu.org_url}/employees", params={"per": 20, "page": 2}).json()
    assert body["metadata"]["total_count"] == 30
    assert body["metadata"]["count"] == 10
    assert body["metadata"]["next_page_url"] is None
    assert "page=1" in body["metadata"]["previous_page_url"]


@pytest.fixture(scope="module")
def filter_emu() -> Any:
    state = EmulatorState(seed=3, badges=300, employees=5)
    tpl = next(t for t in state.templates if not t.allow_duplicates)
    state.issue_badge(badge_payload(tpl.id, email="ann@sub.corp.test", issued_to_first_name="Zelda"))
    state.issue_badge(badge_payload(tpl.id, email="bob@corp.test", issuer_earner_id="E3x"))
    with run_emulator(state) as emulator:
        yield emulator


def _day(value: str | None) -> str:
    return value[:10] if value else ""


def _filter_cases(state: EmulatorState) -> list[tuple[str, Any]]:
    tpl_by_id = {t.id: t for t in state.templates}
    uid = state.find_badges(recipient_email="earner3@example.com")[0]["user"]["id"]
    two_templates = [state.templates[1].id, state.templates[2].id]
    d = "2025-01-01"

    def ts_min(field: str, nulls: bool = False) -> Any:
        return lambda b: (_day(b[field]) or ("9999" if nulls else "")) >= d

    def ts_max(field: str) -> Any:
        return lambda b: b[field] is not None and _day(b[field]) <= d

    return [
        ("query::skiles", lambda b: "skiles" in b["issued_to"].lower() or "skiles" in b["recipient_email"]),
        ("query::zelda", lambda b: "zelda" in b["issued_to"].lower()),
        ("query::@corp.test", lambda b: b["recipient_email"].endswith("@corp.test")),
        ("query::@*.corp.test", lambda b: b["recipient_email"].endswith(".corp.test")),
        ("state::pending,revoked", lambda b: b["state"] in ("pending", "revoked")),
        (f"user_id::{uid}", lambda b: b["user"]["id"] == uid),
        (f"issued_at_min::{d}", ts_min("issued_at")),
        (f"issued_at_max::{d}", ts_max("issued_at")),
        (f"issued_at_date_min::{d}", lambda b: b["issued_at_date"] >= d),
        (f"issued_at_date_max::{d}", lambda b: b["issued_at_date"] <= d),
        (f"issuer_id::{state.org_id}", lambda b: True),
        ("issuer_id::00000000-0000-4000-8000-000000000000", lambda b: False),
        ("issuer_earner_id::E3", lambda b: b["issuer_earner_id"] == "E3"),
        ("public::false", lambda b: b["public"] is False),
        (f"badge_templates[owner_id]::{state.org_id}", lambda b: True),
        ("badge_templates[name]::CLOUD", lambda b: "cloud" in b["badge_template"]["name"].lower()),
        (
            "badge_templates[reporting_tags]::practitioner",
            lambda b: "practitioner" in tpl_by_id[b["badge_template"]["id"]].reporting_tags,
        ),
        (
            "badge_templates[skills]::Data Basics,Cloud Basics",
            lambda b: bool({"Data Basics", "Cloud Basics"} & set(b["badge_template"]["skills"])),
        ),
        (f"created_at_min::{d}", ts_min("created_at")),
        (f"created_at_max::{d}", ts_max("created_at")),
        ("expires_at_min::2027-01-01", lambda b: (_day(b["expires_at"]) or "9999") >= "2027-01-01"),
        ("expires_at_max::2026-06-30", lambda b: b["expires_at"] is not None and _day(b["expires_at"]) <= "2026-06-30"),
        ("expires_at_date_min::2027-01-01", lambda b: (b["expires_at_date"] or "9999") >= "2027-01-01"),
        ("expires_at_date_max::2026-06-30", lambda b: (b["expires_at_date"] or "9999") <= "2026-06-30"),
        (f"state_updated_at_min::{d}", ts_min("state_updated_at")),
        (f"state_updated_at_max::{d}", ts_max("state_updated_at")),
        (f"updated_at_min::{d}", ts_min("updated_at")),
        (f"updated_at_max::{d}", ts_max("updated_at")),
        (f"badge_template_id::{','.join(two_templates)}", lambda b: b["badge_template"]["id"] in two_templates),
        ("recipient_email::EARNER3@example.com", lambda b: b["recipient_email"] == "earner3@example.com"),
        ("recipient_email_all::earner3@example.com", lambda b: b["recipient_email"] == "earner3@example.com"),
        ("state::accepted|badge_templates[name]::data", lambda b: b["state"] == "accepted" and "Data" in b["badge_template"]["name"]),
    ]  # fmt: skip


FILTER_COUNT = 32


@pytest.mark.parametrize("case", range(FILTER_COUNT))
def test_each_filter_key(filter_emu: RunningEmulator, case: int) -> None:
    state = filter_emu.state
    cases = _filter_cases(state)
    assert len(cases) == FILTER_COUNT
    flt, predicate = cases[case]
    everything = state.find_badges()
    expected = {b["id"] for b in everything if predicate(b)}
    got = [b["id"] for b in all_pages(session(filter_emu), f"{filter_emu.org_url}/badges", filter=flt)]
    assert len(got) == len(set(got))
    assert set(got) == expected
    if not flt.startswith(("issuer_id", "badge_templates[owner_id]")):
        assert 0 < len(expected) < len(everything), f"filter {flt} does not discriminate"


def test_filter_keys_cover_the_documented_table(filter_emu: RunningEmulator) -> None:
    documented = {
        "query", "state", "user_id", "issued_at_min", "issued_at_max", "issued_at_date_min",
        "issued_at_date_max", "issuer_id", "issuer_earner_id", "public", "badge_templates[owner_id]",
        "badge_templates[name]", "badge_templates[reporting_tags]", "badge_templates[skills]",
        "created_at_min", "created_at_max", "expires_at_min", "expires_at_max", "expires_at_date_min",
        "expires_at_date_max", "state_updated_at_min", "state_updated_at_max", "updated_at_min",
        "updated_at_max", "badge_template_id", "recipient_email", "recipient_email_all",
    }  # fmt: skip
    tested = {flt.split("::")[0] for flt, _ in _filter_cases(filter_emu.state)}
    assert documented <= tested


@pytest.mark.parametrize(
    "flt",
    ["nope::1", "state::lost", "issued_at_min::2025-13-01", "public::maybe", "state", "created_at_max::"],
)
def test_bad_filters_are_400(filter_emu: RunningEmulator, flt: str) -> None:
    s = session(filter_emu)
    for endpoint in ("badges", "high_volume_issued_badge_search"):
        resp = s.get(f"{filter_emu.org_url}/{endpoint}", params={"filter": flt})
        assert resp.status_code == 400, (endpoint, flt)
        assert resp.json()["data"]["message"]


def test_sorting(filter_emu: RunningEmulator) -> None:
    s, url = session(filter_emu), f"{filter_emu.org_url}/badges"
    default = all_pages(s, url)
    assert [b["created_at"] for b in default] == sorted((b["created_at"] for b in default), reverse=True)
    by_issued = all_pages(s, url, sort="issued_at")
    assert [b["issued_at"] for b in by_issued] == sorted(b["issued_at"] for b in by_issued)
    multi = all_pages(s, url, sort="-users[last_name]|created_at")
    expected = sorted(
        sorted(multi, key=lambda b: b["created_at"]),
        key=lambda b: b["issued_to_last_name"].lower(),
        reverse=True,
    )
    assert [b["id"] for b in multi] == [b["id"] for b in expected]
    assert multi[0]["issued_to_last_name"] != multi[-1]["issued_to_last_name"]
    by_name = all_pages(s, url, sort="badge_templates[name]", filter="state::pending")
    names = [b["badge_template"]["name"] for b in by_name]
    assert names == sorted(names, key=str.lower)
    assert all_pages(s, url, sort="-state_updated_at")[0]["state_updated_at"] == max(
        b["state_updated_at"] or "" for b in default
    )
    firsts = [b["issued_to_first_name"] for b in all_pages(s, url, sort="users[first_name]")]
    assert firsts == sorted(firsts, key=str.lower)
    assert firsts[0] != firsts[-1]
    assert s.get(url, params={"sort": "color"}).status_code == 400


# ---------------------------------------------------------------------- high volume endpoint
def test_high_volume_formats_and_order(filter_emu: RunningEmulator) -> None:
    s, url = session(filter_emu), f"{filter_emu.org_url}/high_volume_issued_badge_search"
    minimal = all_pages(s, url, badge_format="minimal")
    default = all_pages(s, url)
    assert len(minimal) == len(default) == 302
    assert set(minimal[0]) == MINIMAL_KEYS
    assert set(minimal[0]["badge_template"]) == {"id", "name"}
    assert set(default[0]) == HV_DEFAULT_KEYS
    assert set(default[0]["user"]) == {"id"}
    assert default[0]["issuer"]["entities"][0]["name"] == "Emulated Organization"
    keys = [(b["created_at"], b["id"]) for b in minimal]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert keys[0][0] == keys[1][0], "seeded badges come in pairs sharing created_at (id tiebreak)"
    assert [b["id"] for b in default] == [b["id"] for b in minimal]
    first = s.get(url, params={"badge_format": "minimal"}).json()
    assert len(first["data"]) == 50
    assert "cursor=" in first["metadata"]["next_page_url"]
    assert first["metadata"]["next_page_url"].startswith(filter_emu.root_url)
    assert s.get(url, params={"sort": "created_at"}).status_code == 400
    assert s.get(url, params={"badge_format": "huge"}).status_code == 400
    assert s.get(url, params={"cursor": "garbage!"}).status_code == 400


def test_high_volume_filter_matches_page_endpoint(filter_emu: RunningEmulator) -> None:
    s = session(filter_emu)
    flt = "state::accepted|expires_at_min::2026-01-01"
    hv = all_pages(
        s, f"{filter_emu.org_url}/high_volume_issued_badge_search", filter=flt, badge_format="minimal"
    )
    listed = all_pages(s, f"{filter_emu.org_url}/badges", filter=flt)
    assert {b["id"] for b in hv} == {b["id"] for b in listed}
    assert len(hv) == len(listed) > 50


def test_cursor_is_stable_under_concurrent_changes(credly_emulator_factory: Any) -> None:
    emu = credly_emulator_factory(badges=230, hv_page_size=40, seed=5)
    state = emu.state
    state.clock = clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))  # inside the seeded range: mid-stream
    s, url = session(emu), f"{emu.org_url}/high_volume_issued_badge_search"
    original = [b["id"] for b in state.find_badges()]
    seen: list[str] = []
    body = s.get(url, params={"badge_format": "minimal"}).json()
    tpl = next(t.id for t in state.templates if t.allow_duplicates)
    page = 0
    while True:
        seen.extend(b["id"] for b in body["data"])
        page += 1
        if page <= 3:
            for i in range(4):
                s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email=f"late{page}{i}@example.com"))
                clock.advance(days=30)
            state.set_badge_state(original[-1 - page], "accepted")
        if not body["metadata"]["next_page_url"]:
            break
        body = s.get(body["metadata"]["next_page_url"]).json()
    assert len(seen) == len(set(seen))
    assert [b for b in seen if b in set(original)] == original
    deleted = original[200]
    s.delete(f"{emu.org_url}/badges/{deleted}")
    rest = all_pages(s, url, badge_format="minimal")
    assert deleted not in {b["id"] for b in rest}


# ---------------------------------------------------------------------- workforce
def test_employee_crud_and_lookups(s: requests.Session, emu: RunningEmulator) -> None:
    url = f"{emu.org_url}/employees"
    created = s.post(url, json={"email": "Neo@corp.test", "first_name": "Neo", "last_name": "Anderson",
                                "external_id": "EXT-1", "team": "Red", "country": "Canada"})  # fmt: skip
    assert created.status_code == 201
    emp = created.json()["data"]
    assert (emp["employee_state"], emp["full_name"], emp["location"]) == ("created", "Neo Anderson", "Canada")
    for key in (emp["id"], "neo@corp.test", "EXT-1"):
        assert s.get(f"{url}/{key}").json()["data"]["id"] == emp["id"]
    dup = s.post(
        url, json={"email": "neo@corp.test", "first_name": "N", "last_name": "A", "external_id": "EXT-1"}
    )
    assert dup.status_code == 422
    assert dup.json()["data"]["message"] == (
        "Validation failed: Email has already been taken, External has already been taken"
    )
    missing = s.post(url, json={"email": "a@b.co"})
    assert {e["attribute"] for e in missing.json()["data"]["errors"]} == {"first_name", "last_name"}
    upd = s.put(f"{url}/EXT-1", json={"external_id": "EXT-2", "team": "Blue"}).json()["data"]
    assert (upd["external_id"], upd["team"]) == ("EXT-2", "Blue")
    assert s.get(f"{url}/EXT-1").status_code == 404
    assert s.delete(f"{url}/EXT-2").status_code == 204
    assert s.get(f"{url}/{emp['id']}").status_code == 404
    assert emu.state.get_employee("neo@corp.test") is None


def test_employee_filters_and_sorts(s: requests.Session, emu: RunningEmulator) -> None:
    url = f"{emu.org_url}/employees"
    pending = all_pages(s, url, filter="employee_state::pending")
    assert pending
    assert all(e["employee_state"] == "pending" for e in pending)
    team = all_pages(s, url, filter="team::data")
    assert team
    assert {e["team"] for e in team} == {"Data"}
    named = all_pages(s, url, filter="name_or_email::earner1")
    assert {e["email"] for e in named} == {f"earner{i}@example.com" for i in [1, *range(10, 20)]}
    emails = [e["email"] for e in all_pages(s, url, sort="-email")]
    assert emails == sorted(emails, reverse=True)
    assert s.get(url, params={"filter": "employee_state::gone"}).status_code == 400
    assert s.get(url, params={"sort": "salary"}).status_code == 400


def test_send_invitations(s: requests.Session, emu: RunningEmulator) -> None:
    emu.state.clock = FakeClock(datetime(2026, 2, 2, tzinfo=UTC))
    url = f"{emu.org_url}/employees"
    emu.state.add_employee("inv@corp.test", "In", "Vite", external_id="INV-1")
    bad = s.post(f"{url}/send_invitations", json={"employee_list": ["INV-1"]})
    assert bad.status_code == 422
    assert bad.json()["data"]["errors"][0]["attribute"] == "list_type"
    assert s.post(f"{url}/send_invitations", json={"statuses": ["accepted"]}).status_code == 422
    ok = s.post(f"{url}/send_invitations", json={"employee_list": ["INV-1"], "list_type": "external_id"})
    assert ok.json() == {"data": {"resend_start": "2026-02-02T00:00:00.000Z"}}
    emp = emu.state.get_employee("INV-1")
    assert emp is not None
    assert emp["employee_state"] == "pending"
    assert emp["last_invitation_sent_at"] == "2026-02-02T00:00:00.000Z"
    untouched = [e for e in emu.state.employees if e["email"] != "inv@corp.test"]
    assert all(e["last_invitation_sent_at"] is None for e in untouched)


def test_employee_data_and_external_badges(s: requests.Session, emu: RunningEmulator) -> None:
    url = f"{emu.org_url}/employees/earner3@example.com/data"
    data = s.get(url).json()["data"]
    expected = {b["id"] for b in emu.state.find_badges(recipient_email="earner3@example.com")}
    assert {b["id"] for b in data["badges"]} == expected
    assert expected
    assert set(data["badges"][0]["badge_template"]) == {
        "id",
        "image",
        "image_url",
        "description",
        "name",
        "skills",
    }
    ext = s.get(f"{emu.org_url}/employee_external_badges").json()
    assert ext["metadata"]["total_count"] == 10
    emp = emu.state.get_employee("earner3@example.com")
    assert emp is not None
    one = s.get(
        f"{emu.org_url}/employee_external_badges", params={"filter[employee][id]": emp["external_id"]}
    )
    assert [x["employee"]["id"] for x in one.json()["data"]] == [emp["id"]]


# ---------------------------------------------------------------------- faults
def test_rate_limit_sends_retry_after(s: requests.Session, emu: RunningEmulator) -> None:
    emu.set_faults(rate_limit=0.5, rate_limit_burst=1)
    url = f"{emu.org_url}/badges"
    assert s.get(url).status_code == 200
    limited = s.get(url)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["data"]["message"]
    emu.set_faults(retry_after_http_date=True)
    s.get(url)
    dated = s.get(url)
    assert dated.status_code == 429
    assert parsedate_to_datetime(dated.headers["Retry-After"]) > datetime.now(UTC)
    emu.clear_faults()
    assert s.get(url).status_code == 200
    assert emu.stats()["rate_limited"] >= 2


def test_error_rate_rotates_5xx_before_any_work(s: requests.Session, emu: RunningEmulator) -> None:
    emu.set_faults(error_rate=1.0)
    codes = [
        s.post(f"{emu.org_url}/badges", json=badge_payload(strict_template(emu))).status_code
        for _ in range(3)
    ]
    assert codes == [500, 502, 503]
    assert emu.state.issue_count == 0
    assert emu.stats()["errors_injected"] == 3


def test_error_after_applies_the_effect(s: requests.Session, emu: RunningEmulator) -> None:
    tpl = strict_template(emu)
    emu.set_faults(error_after_rate=1.0, error_after_mode="error")
    resp = s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="once@example.com"))
    assert resp.status_code == 500
    assert emu.state.issue_count == 1
    assert len(emu.state.find_badges(recipient_email="once@example.com")) == 1
    emu.set_faults(error_after_mode="drop")
    with pytest.raises(requests.ConnectionError):
        s.post(f"{emu.org_url}/badges", json=badge_payload(tpl, email="twice@example.com"))
    assert len(emu.state.find_badges(recipient_email="twice@example.com")) == 1
    assert s.get(f"{emu.org_url}/badges").status_code == 200, "reads are not affected"
    assert emu.stats()["errors_after"] == 2


def test_drop_closes_the_connection(s: requests.Session, emu: RunningEmulator) -> None:
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError, match="Connection aborted|RemoteDisconnected"):
        s.get(f"{emu.org_url}/badges")
    assert emu.stats()["dropped"] == 1
    assert emu.stats()["by_status"] == {}


def test_fail_paths_latency_and_http_admin(s: requests.Session, emu: RunningEmulator) -> None:
    admin = f"{emu.root_url}/_emulator/faults"
    config = requests.post(admin, json={"error_rate": 1.0, "fail_paths": "/employees"}).json()
    assert config["error_rate"] == 1.0
    assert s.get(f"{emu.org_url}/badges").status_code == 200
    assert s.get(f"{emu.org_url}/employees").status_code == 500
    assert requests.post(admin, json={"bogus": 1}).status_code == 400
    requests.delete(admin)
    emu.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert s.get(f"{emu.org_url}/employees").status_code == 200
    assert time.perf_counter() - started >= 0.15
    stats = requests.get(f"{emu.root_url}/_emulator/stats").json()
    assert stats["by_status"]["500"] == 1
    assert stats["by_route"]["GET employees.list"] == 2
    assert emu.state.request_count("GET", "badges.list") == 1


def test_faults_are_deterministic_under_a_seed(credly_emulator_factory: Any) -> None:
    outcomes = []
    for _ in range(2):
        emu = credly_emulator_factory(error_rate=0.5, fault_seed=42)
        s = session(emu)
        outcomes.append([s.get(f"{emu.org_url}/badges", params={"per": 1}).status_code for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert len(set(outcomes[0])) > 1


# ---------------------------------------------------------------------- plumbing & Python API
def test_keep_alive_reuses_the_connection(s: requests.Session, emu: RunningEmulator) -> None:
    responses = [s.get(emu.org_url), s.delete(f"{emu.org_url}/badges/nope"), s.get(f"{emu.org_url}/badges")]
    assert [r.status_code for r in responses] == [200, 404, 200]
    assert all(r.headers["Content-Length"] == str(len(r.content)) for r in responses)
    assert emu.stats()["connections"] == 1


def test_python_api(emu: RunningEmulator) -> None:
    state = emu.state
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    state.clock = clock
    tpl = strict_template(emu)
    badge = state.issue_badge(badge_payload(tpl, email="py@example.com"))
    clock.advance(hours=1)
    accepted = state.set_badge_state(badge["id"], "accepted")
    assert accepted["state_updated_at"] == "2026-01-01T01:00:00.000Z"
    assert state.find_badges(recipient_email="py@example.com", state="accepted")[0]["id"] == badge["id"]
    stored = state.get_badge(badge["id"])
    assert stored is not None
    assert stored["created_at"] == "2026-01-01T00:00:00.000Z"
    assert state.badges_count() == 121
    assert len(state.employees) == 30
    state.reset()
    assert state.badges_count() == 120
    assert state.issue_count == 0
    assert state.get_badge(badge["id"]) is None


def test_state_is_deterministic() -> None:
    a, b = EmulatorState(seed=9, badges=50), EmulatorState(seed=9, badges=50)
    c = EmulatorState(seed=10, badges=50)
    assert a.find_badges() == b.find_badges()
    assert a.store.ids != c.store.ids
    assert a.org_id != c.org_id


def test_spawned_process_serves_and_is_controllable() -> None:
    with spawn_emulator_process(badges=60, employees=3, seed=2, hv_page_size=25) as emu:
        s = session(emu)
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert emu.base_url.endswith("/v1")
        hv = all_pages(s, f"{emu.org_url}/high_volume_issued_badge_search", badge_format="minimal")
        assert len(hv) == 60
        emu.set_faults(error_rate=1.0)
        assert s.get(f"{emu.org_url}/badges").status_code == 500
        emu.clear_faults()
        assert emu.stats()["errors_injected"] == 1
        token = base64.b64decode(emu.headers["Authorization"][6:]).decode()
        assert token == f"{emu.token}:"
    assert emu.process.poll() is not None


def test_stop_closes_idle_keep_alive_connections() -> None:
    emu = run_emulator(EmulatorState(badges=5, employees=1))
    s = session(emu)
    assert s.get(f"{emu.org_url}/badges").status_code == 200
    emu.stop()
    assert not emu.thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        s.get(f"{emu.org_url}/badges", timeout=2)


def test_minimal_json_escapes_api_supplied_text(s: requests.Session, emu: RunningEmulator) -> None:
    name = 'Zoë "Q" O\\Neil\u4e2d\t!'
    payload = badge_payload(strict_template(emu), email="zoe@example.com", issued_to_first_name=name)
    created = s.post(f"{emu.org_url}/badges", json=payload).json()["data"]
    url = f"{emu.org_url}/high_volume_issued_badge_search"
    minimal = {b["id"]: b for b in all_pages(s, url, badge_format="minimal")}[created["id"]]
    default = {b["id"]: b for b in all_pages(s, url)}[created["id"]]
    assert minimal["issued_to_first_name"] == name
    assert minimal["issued_to"] == f"{name} Person"
    assert {k: v for k, v in default.items() if k in MINIMAL_KEYS and k != "badge_template"} == {
        k: v for k, v in minimal.items() if k != "badge_template"
    }
