"""Every CredlyClient method against mocked HTTP: method, path, query, body and result."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from airflow_provider_credly.client import ApiError, CredlyClient, PayloadError, UnsafeUrlError

BASE = "https://api.credly.test/v1"
ORG = "org-1"
ORG_URL = f"{BASE}/organizations/{ORG}"


@pytest.fixture
def client():
    return CredlyClient.create("tok", ORG, base_url=BASE)


def page(items, next_url=None):
    return {"data": items, "metadata": {"per": 50, "next_page_url": next_url}}


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def body(call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_organizations(client):
    responses.get(f"{BASE}/organizations", json=page([{"id": "a"}, {"id": "b"}]))
    responses.get(ORG_URL, json={"data": {"id": ORG, "name": "Org"}, "metadata": {}})
    responses.put(ORG_URL, json={"data": {"id": ORG, "bio": "x"}, "metadata": {}})
    assert [o["id"] for o in client.iter_organizations()] == ["a", "b"]
    assert client.get_organization()["name"] == "Org"
    assert client.update_organization(bio="x")["bio"] == "x"
    assert body(responses.calls[2]) == {"bio": "x"}


@responses.activate
def test_events_and_tokens(client):
    responses.get(f"{ORG_URL}/events/e1", json={"data": {"id": "e1", "event_type": "badge.created"}})
    responses.get(f"{ORG_URL}/events", json=page([{"id": "e1"}], f"{ORG_URL}/events?page=2"))
    responses.get(f"{ORG_URL}/events?page=2", json=page([{"id": "e2"}]))
    responses.get(f"{ORG_URL}/authorization_tokens", json=page([{"id": "t1", "token": "****"}]))
    assert client.get_event("e1")["event_type"] == "badge.created"
    assert [e["id"] for e in client.iter_events()] == ["e1", "e2"]
    assert [t["id"] for t in client.iter_authorization_tokens()] == ["t1"]


@responses.activate
def test_issue_badge_validates_then_posts(client):
    responses.post(f"{ORG_URL}/badges", json={"data": {"id": "b1", "state": "pending"}}, status=201)
    badge = client.issue_badge(
        recipient_email="a@b.co",
        issued_to_first_name="A",
        issued_to_last_name="B",
        badge_template_id="t",
        issued_at=date(2025, 1, 1),
    )
    assert badge == {"id": "b1", "state": "pending"}
    assert body(responses.calls[0])["issued_at"] == "2025-01-01 00:00:00 +0000"
    with pytest.raises(PayloadError):
        client.issue_badge(recipient_email="a@b.co")
    assert len(responses.calls) == 1  # nothing sent for the invalid badge


@responses.activate
def test_badge_listing_with_filters_and_sort(client):
    responses.get(f"{ORG_URL}/badges", json=page([{"id": "b1"}]))
    items = list(
        client.iter_badges(
            {"state": ["accepted", "revoked"], "issued_at_min": date(2024, 1, 1)}, "-issued_at"
        )
    )
    assert items == [{"id": "b1"}]
    assert query(responses.calls[0]) == {
        "filter": ["state::accepted,revoked|issued_at_min::2024-01-01"],
        "sort": ["-issued_at"],
    }


def test_invalid_filter_fails_before_any_request(client):
    with responses.RequestsMock() as mocked:  # any request would fail the test
        with pytest.raises(ValueError, match="unknown filter key"):
            list(client.iter_badges({"stat": "x"}))
        with pytest.raises(ValueError, match="badge_format"):
            list(client.iter_high_volume_badge_pages(badge_format="full"))
        assert len(mocked.calls) == 0


@responses.activate
def test_high_volume_cursor_follows_next_page_url_verbatim(client):
    hv = f"{ORG_URL}/high_volume_issued_badge_search"
    responses.get(hv, json=page([{"id": "1"}, {"id": "2"}], f"{hv}?cursor=abc&badge_format=minimal"))
    responses.get(f"{hv}?cursor=abc&badge_format=minimal", json=page([{"id": "3"}]))
    pages = list(client.iter_high_volume_badge_pages({"badge_template_id": "t"}, badge_format="minimal"))
    assert [[b["id"] for b in p.items] for p in pages] == [["1", "2"], ["3"]]
    assert pages[0].next_url == f"{hv}?cursor=abc&badge_format=minimal"
    assert pages[1].url == pages[0].next_url
    assert pages[1].next_url is None
    assert query(responses.calls[0]) == {"filter": ["badge_template_id::t"], "badge_format": ["minimal"]}
    assert query(responses.calls[1]) == {"cursor": ["abc"], "badge_format": ["minimal"]}


@responses.activate
def test_cursor_resumes_from_a_saved_url(client):
    hv = f"{ORG_URL}/high_volume_issued_badge_search"
    responses.get(f"{hv}?cursor=xyz", json=page([{"id": "9"}]))
    pages = list(client.iter_high_volume_badge_pages(start_url=f"{hv}?cursor=xyz"))
    assert [p.items for p in pages] == [[{"id": "9"}]]
    assert len(responses.calls) == 1


@responses.activate
def test_foreign_next_page_url_is_refused_and_never_requested(client):
    responses.get(f"{ORG_URL}/badges", json=page([{"id": "1"}], "https://evil.example/v1/steal?page=2"))
    with pytest.raises(UnsafeUrlError):
        list(client.iter_badges())
    assert len(responses.calls) == 1


@responses.activate
def test_a_next_page_url_pointing_to_itself_is_an_error(client):
    responses.get(f"{ORG_URL}/events?page=2", json=page([{"id": "x"}], f"{ORG_URL}/events?page=2"))
    with pytest.raises(ApiError, match="own URL"):
        list(client.iter_event_pages(start_url=f"{ORG_URL}/events?page=2"))


@responses.activate
def test_replace_revoke_delete(client):
    responses.post(
        f"{ORG_URL}/badges/b1/replace", json={"data": {"id": "b2", "replaces_badge_id": "b1"}}, status=201
    )
    responses.put(f"{ORG_URL}/badges/b2/revoke", json={"data": {"id": "b2", "state": "revoked"}})
    responses.delete(f"{ORG_URL}/badges/b2", status=204)
    assert client.replace_badge("b1", badge_template_id="t", issued_at="2025-01-01T00:00:00Z")["id"] == "b2"
    assert client.revoke_badge("b2", "bounced", suppress_revoke_notification_email=True)["state"] == "revoked"
    assert client.delete_badge("b2") is None
    assert body(responses.calls[1]) == {"reason": "bounced", "suppress_revoke_notification_email": True}
    assert [c.request.method for c in responses.calls] == ["POST", "PUT", "DELETE"]


@responses.activate
def test_workforce_endpoints(client):
    emp = {"id": "e1", "email": "a@b.co"}
    responses.get(f"{ORG_URL}/employees", json=page([emp]))
    responses.get(f"{ORG_URL}/employees/a@b.co", json={"data": emp})
    responses.post(f"{ORG_URL}/employees", json={"data": emp}, status=201)
    responses.put(f"{ORG_URL}/employees/ext%201", json={"data": {**emp, "team": "T"}})
    responses.delete(f"{ORG_URL}/employees/e1", status=204)
    responses.post(
        f"{ORG_URL}/employees/send_invitations", json={"data": {"resend_start": "2023-02-16T16:41:38.366Z"}}
    )
    responses.get(f"{ORG_URL}/employees/e1/data", json={"data": {**emp, "badges": []}})
    responses.get(f"{ORG_URL}/employee_external_badges", json=page([{"employee": {"id": "e1"}}]))

    assert list(client.iter_employees({"employee_state": "pending"}, "-created_at")) == [emp]
    assert query(responses.calls[0]) == {"filter": ["employee_state::pending"], "sort": ["-created_at"]}
    assert client.get_employee("a@b.co") == emp
    assert client.create_employee(email="a@b.co", first_name="A", last_name="B") == emp
    assert client.update_employee("ext 1", team="T")["team"] == "T"
    assert body(responses.calls[3]) == {"team": "T"}
    client.delete_employee("e1")
    assert client.send_invitations(["ext-1"], list_type="external_id", statuses=["pending"])["resend_start"]
    assert body(responses.calls[5]) == {
        "employee_list": ["ext-1"],
        "list_type": "external_id",
        "statuses": ["pending"],
    }
    assert client.get_employee_data("e1")["badges"] == []
    assert list(client.iter_employee_external_badges("e1")) == [{"employee": {"id": "e1"}}]
    assert query(responses.calls[7]) == {"filter[employee][id]": ["e1"], "per": ["50"]}


def test_org_is_required_for_org_endpoints():
    client = CredlyClient.create("tok", None, base_url=BASE)
    with pytest.raises(ValueError, match="organization_id"):
        client.get_organization()
    assert client.for_organization("o2").organization_id == "o2"
    assert "tok" not in repr(client)
