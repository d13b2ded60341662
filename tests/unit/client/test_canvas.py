"""CanvasCredentialsClient over mocked HTTP (``responses``): token lifecycle, errors, Link pages, endpoints."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from airflow_provider_credly.client import (
    AuthenticationError,
    HttpClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from airflow_provider_credly.client.canvas import (
    CanvasCredentialsClient,
    CanvasTokenAuth,
    canvas_error_details,
    is_duplicate_award_error,
    parse_link_header,
    resolve_base_url,
)
from airflow_provider_credly.client.payloads import PayloadError

BASE = "https://api.badgr.io"
TOKEN_URL = f"{BASE}/o/token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def envelope(*result, **extra):
    return {"status": {"success": True, "description": "ok"}, "result": list(result), **extra}


def make_client(clock=None, *, attempts: int = 1, margin: float = 60.0) -> CanvasCredentialsClient:
    http = HttpClient(
        BASE,
        retry=RetryPolicy(max_attempts=attempts, backoff_base=0.0, jitter=0.0),
        sleep=lambda _s: None,
        error_parser=canvas_error_details,
        validation_statuses=frozenset({400}),
    )
    http.auth = CanvasTokenAuth(
        http, "jane@example.com", "s3cret-pass", refresh_margin=margin, clock=clock or Clock()
    )
    return CanvasCredentialsClient(http)


def token_body(n: int, *, expires_in=3600, refresh=True):
    body = {"access_token": f"access-{n}", "token_type": "Bearer", "expires_in": expires_in}
    if refresh:
        body["refresh_token"] = f"refresh-{n}"
    return body


def form_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def token_calls(rsps) -> list[dict[str, str]]:
    return [form_of(c) for c in rsps.calls if c.request.url == TOKEN_URL]


def api_calls(rsps):
    return [c for c in rsps.calls if c.request.url != TOKEN_URL]


# ------------------------------------------------------------------------------------------ token lifecycle


@responses.activate
def test_password_grant_in_form_body_then_bearer_header():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.get(f"{BASE}/v2/issuers", json=envelope({"entityId": "I1"}))
    client = make_client()
    assert client.list_issuers() == [{"entityId": "I1"}]
    (form,) = token_calls(responses)
    assert form == {
        "grant_type": "password",
        "username": "jane@example.com",
        "password": "s3cret-pass",
        "client_id": "public",
    }
    assert responses.calls[0].request.headers.get("Authorization") is None
    assert api_calls(responses)[0].request.headers["Authorization"] == "Bearer access-1"


@responses.activate
def test_new_tokens_are_reported_for_masking():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.get(f"{BASE}/v2/issuers", json=envelope())
    seen = []
    client = make_client()
    client.http.auth._on_token = seen.append
    client.list_issuers()
    assert seen == ["access-1", "refresh-1"]


@responses.activate
def test_token_reused_until_margin_then_refresh_grant():
    clock = Clock()
    responses.post(TOKEN_URL, json=token_body(1, expires_in=600))
    responses.post(TOKEN_URL, json=token_body(2, expires_in=600))
    responses.get(f"{BASE}/v2/issuers", json=envelope())
    client = make_client(clock, margin=60)
    client.list_issuers()
    clock.now += 530  # 70 s left: still valid
    client.list_issuers()
    assert len(token_calls(responses)) == 1
    clock.now += 15  # 55 s left: inside the margin -> proactive refresh
    client.list_issuers()
    forms = token_calls(responses)
    assert [f["grant_type"] for f in forms] == ["password", "refresh_token"]
    assert forms[1]["refresh_token"] == "refresh-1"
    assert "password" not in forms[1]
    assert [c.request.headers["Authorization"] for c in api_calls(responses)] == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]


@responses.activate
def test_short_lifetime_margin_is_capped_at_half_the_lifetime():
    clock = Clock()
    responses.post(TOKEN_URL, json=token_body(1, expires_in=10))
    responses.get(f"{BASE}/v2/issuers", json=envelope())
    client = make_client(clock, margin=60)
    client.list_issuers()
    clock.now += 4
    client.list_issuers()
    assert len(token_calls(responses)) == 1
    assert client.http.auth.expires_at == pytest.approx(1010.0)


@responses.activate
def test_rejected_refresh_token_falls_back_to_password_grant():
    clock = Clock()
    responses.post(TOKEN_URL, json=token_body(1, expires_in=100))
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    responses.post(TOKEN_URL, json=token_body(3, expires_in=100, refresh=False))
    responses.get(f"{BASE}/v2/issuers", json=envelope())
    client = make_client(clock)
    client.list_issuers()
    clock.now += 99
    client.list_issuers()
    assert [f["grant_type"] for f in token_calls(responses)] == ["password", "refresh_token", "password"]
    assert api_calls(responses)[-1].request.headers["Authorization"] == "Bearer access-3"


@responses.activate
def test_401_refreshes_once_and_retries_with_new_header():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    responses.get(f"{BASE}/v2/issuers", status=401, json={"detail": "expired"})
    responses.get(f"{BASE}/v2/issuers", json=envelope({"entityId": "I1"}))
    client = make_client()
    assert client.list_issuers() == [{"entityId": "I1"}]
    headers = [c.request.headers["Authorization"] for c in api_calls(responses)]
    assert headers == ["Bearer access-1", "Bearer access-2"]
    assert [f["grant_type"] for f in token_calls(responses)] == ["password", "refresh_token"]


@responses.activate
def test_401_twice_raises_after_one_retry():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.post(TOKEN_URL, json=token_body(2))
    responses.get(f"{BASE}/v2/issuers", status=401, json={"detail": "no"})
    client = make_client()
    with pytest.raises(AuthenticationError):
        client.list_issuers()
    assert len(api_calls(responses)) == 2
    assert len(token_calls(responses)) == 2


@pytest.mark.parametrize("status", [400, 401])
@responses.activate
def test_bad_password_raises_once_without_loop(status):
    responses.post(
        TOKEN_URL, status=status, json={"error": "invalid_grant", "error_description": "Invalid credentials"}
    )
    client = make_client(attempts=5)
    with pytest.raises(AuthenticationError, match="Invalid credentials") as info:
        client.list_issuers()
    assert len(responses.calls) == 1
    assert "s3cret-pass" not in str(info.value)


@responses.activate
def test_token_response_without_access_token_is_an_auth_error():
    responses.post(TOKEN_URL, json={"token_type": "Bearer"})
    with pytest.raises(AuthenticationError, match="no access_token"):
        make_client().list_issuers()


@responses.activate
def test_concurrent_callers_share_one_token_request():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.get(f"{BASE}/v2/issuers", json=envelope())
    client = make_client()
    threads = [threading.Thread(target=client.list_issuers) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(token_calls(responses)) == 1
    assert len(api_calls(responses)) == 8


def test_repr_and_errors_hide_secrets():
    client = make_client()
    text = repr(client.http.auth) + repr(client) + repr(client.http)
    assert "s3cret" not in text
    assert "jane@example.com" not in text
    with pytest.raises(ValueError, match="password"):
        CanvasTokenAuth(client.http, "jane@example.com", "")


# ------------------------------------------------------------------------------------------- errors


def test_field_errors_normalised():
    details = canvas_error_details(
        400,
        {
            "status": {"success": False, "description": "Bad Request"},
            "fieldErrors": {"recipient": ["This field is required."], "empty": []},
            "validationErrors": ["bad thing"],
            "errorCode": "E1",
        },
    )
    assert details.errors == [
        {"attribute": "recipient", "messages": ["This field is required."]},
        {"attribute": None, "messages": ["bad thing"]},
    ]
    assert details.message.startswith("Bad Request: recipient: This field is required.; bad thing")
    assert details.metadata == {"errorCode": "E1"}


@responses.activate
def test_error_mapping_over_http():
    responses.post(TOKEN_URL, json=token_body(1))
    responses.get(
        f"{BASE}/v2/issuers/I1",
        status=400,
        json={"status": {"success": False, "description": "bad"}, "fieldErrors": {"x": ["nope"]}},
    )
    responses.get(f"{BASE}/v2/issuers/I2", status=404, json={"status": {"success": False}})
    responses.get(f"{BASE}/v2/issuers/I3", status=429, headers={"Retry-After": "7"}, json={})
    responses.get(f"{BASE}/v2/issuers/I4", status=503, body="oops")
    client = make_client()
    with pytest.raises(ValidationError) as bad:
        client.get_issuer("I1")
    assert bad.value.errors == [{"attribute": "x", "messages": ["nope"]}]
    assert bad.value.status == 400
    with pytest.raises(NotFoundError, match="lacks permission"):
        client.get_issuer("I2")
    with pytest.raises(RateLimitError) as limited:
        client.get_issuer("I3")
    assert limited.value.retry_after == 7
    with pytest.raises(ServerError):
        client.get_issuer("I4")


def test_duplicate_award_detection():
    dup = ValidationError(
        "Bad Request",
        errors=[
            {
                "attribute": None,
                "messages": ["A previous award of this badge already exists for this recipient."],
            }
        ],
        status=400,
    )
    other = ValidationError("Bad Request", errors=[{"attribute": "recipient", "messages": ["required"]}])
    assert is_duplicate_award_error(dup)
    assert not is_duplicate_award_error(other)
    assert not is_duplicate_award_error(ServerError("x"))


# ---------------------------------------------------------------------------------------------- Link


def test_parse_link_header():
    value = (
        '<https://api.badgr.io/v2/badgeclasses/B/assertions?num=2&after=abc>; rel="next", '
        "</v2/badgeclasses/B/assertions?num=2&before=xyz>; rel=prev"
    )
    links = parse_link_header(value, "https://api.badgr.io/v2/badgeclasses/B/assertions?num=2")
    assert links == {
        "next": "https://api.badgr.io/v2/badgeclasses/B/assertions?num=2&after=abc",
        "prev": "https://api.badgr.io/v2/badgeclasses/B/assertions?num=2&before=xyz",
    }
    assert parse_link_header(None) == {}
    assert parse_link_header('<a>; rel="next prev"') == {"next": "a", "prev": "a"}


@responses.activate
def test_assertion_pages_follow_link_verbatim():
    responses.post(TOKEN_URL, json=token_body(1))
    first = f"{BASE}/v2/badgeclasses/B1/assertions"
    cursor = f"{BASE}/v2/badgeclasses/B1/assertions?num=2&include_revoked=true&after=Zm9v%3D"
    responses.get(
        first,
        json=envelope({"entityId": "a1"}, {"entityId": "a2"}),
        headers={"Link": f'<{cursor}>; rel="next"'},
        match=[
            responses.matchers.query_param_matcher(
                {
                    "num": "2",
                    "include_expired": "false",
                    "include_revoked": "true",
                    "recipient": "x@example.com",
                }
            )
        ],
    )
    responses.get(
        cursor,
        json=envelope({"entityId": "a3"}),
        match=[responses.matchers.query_string_matcher("num=2&include_revoked=true&after=Zm9v%3D")],
    )
    client = make_client()
    pages = list(
        client.iter_assertion_pages(
            "badgeclasses", "B1", recipient="x@example.com", include_revoked=True, num=2
        )
    )
    assert [[i["entityId"] for i in p.items] for p in pages] == [["a1", "a2"], ["a3"]]
    assert pages[0].next_url == cursor
    assert pages[1].next_url is None
    assert api_calls(responses)[1].request.url == cursor


@responses.activate
def test_foreign_link_is_refused():
    from airflow_provider_credly.client import UnsafeUrlError

    responses.post(TOKEN_URL, json=token_body(1))
    responses.get(
        f"{BASE}/v2/issuers/I/assertions",
        json=envelope({"entityId": "a1"}),
        headers={"Link": '<https://evil.example.com/steal>; rel="next"'},
    )
    with pytest.raises(UnsafeUrlError):
        list(make_client().iter_assertions("issuers", "I"))


def test_assertion_argument_validation():
    client = make_client()
    with pytest.raises(ValueError, match="scope"):
        list(client.iter_assertions("users", "X"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num"):
        list(client.iter_assertions("issuers", "X", num=501))
    with pytest.raises(PayloadError) as bad:
        client.issue_assertion("issuers", "I", recipient_identity="not-an-email", issued_on="yesterday")
    assert len(bad.value.problems) == 3


# ------------------------------------------------------------------------------------ every endpoint


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


OB_ID = "https://api.badgr.io/public/issuers/I1"


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.list_issuers(include_staff=False), "GET", "/v2/issuers?include_staff=false", None),
        (lambda c: c.get_issuer("I1"), "GET", "/v2/issuers/I1", None),
        (
            lambda c: c.get_issuer(OB_ID, by="openBadgeId"),
            "GET",
            f"/v2/issuers/openBadgeId/{b64(OB_ID)}",
            None,
        ),
        (lambda c: c.get_issuer(OB_ID, by="ref"), "GET", f"/v2/issuers/ref/{b64(OB_ID)}", None),
        (
            lambda c: c.create_issuer(name="N", email="e@x.org", url="https://x.org"),
            "POST",
            "/v2/issuers",
            {"name": "N", "email": "e@x.org", "url": "https://x.org"},
        ),
        (
            lambda c: c.replace_issuer("I1", name="N", email="e@x.org", url="https://x.org", description="D"),
            "PUT",
            "/v2/issuers/I1",
            {"name": "N", "email": "e@x.org", "url": "https://x.org", "description": "D"},
        ),
        (
            lambda c: c.replace_issuer(
                OB_ID, by="ref", name="N", email="e@x.org", url="https://x.org", description="D"
            ),
            "PUT",
            f"/v2/issuers/ref/{b64(OB_ID)}",
            {"name": "N", "email": "e@x.org", "url": "https://x.org", "description": "D"},
        ),
        (lambda c: c.update_issuer("I1", name="N2"), "PATCH", "/v2/issuers/I1", {"name": "N2"}),
        (
            lambda c: c.update_issuer(OB_ID, by="openBadgeId", name="N2"),
            "PATCH",
            f"/v2/issuers/openBadgeId/{b64(OB_ID)}",
            {"name": "N2"},
        ),
        (lambda c: c.delete_issuer("I1"), "DELETE", "/v2/issuers/I1", None),
        (
            lambda c: c.delete_issuer(OB_ID, by="openBadgeId"),
            "DELETE",
            f"/v2/issuers/openBadgeId/{b64(OB_ID)}",
            None,
        ),
        (lambda c: c.delete_issuer(OB_ID, by="ref"), "DELETE", f"/v2/issuers/ref/{b64(OB_ID)}", None),
        (
            lambda c: c.add_staff("I1", "a@x.org", "editor"),
            "POST",
            "/v2/issuers/I1/staff",
            {"email": "a@x.org", "role": "editor"},
        ),
        (
            lambda c: c.invite_staff("I1", "a@x.org", "owner"),
            "POST",
            "/v2/issuers/I1/staff/invitations",
            {"email": "a@x.org", "role": "owner"},
        ),
        (
            lambda c: c.change_staff_role("I1", "a@x.org", "staff"),
            "PUT",
            "/v2/issuers/I1/staff",
            {"email": "a@x.org", "role": "staff"},
        ),
        (
            lambda c: c.change_staff_role("I1", "a@x.org", "staff", method="PATCH"),
            "PATCH",
            "/v2/issuers/I1/staff",
            {"email": "a@x.org", "role": "staff"},
        ),
        (lambda c: c.remove_staff("I1", "a@x.org"), "DELETE", f"/v2/issuers/I1/staff/{b64('a@x.org')}", None),
        (
            lambda c: c.list_badge_classes("I1", include_archived=True),
            "GET",
            "/v2/issuers/I1/badgeclasses?include_archived=true",
            None,
        ),
        (
            lambda c: c.create_badge_class(
                "I1", name="B", image="https://x.org/i.png", description="D", tags=["t"]
            ),
            "POST",
            "/v2/issuers/I1/badgeclasses",
            {"name": "B", "image": "https://x.org/i.png", "description": "D", "tags": ["t"]},
        ),
        (
            lambda c: c.issue_assertion(
                "badgeclasses",
                "B1",
                recipient_identity="r@x.org",
                allow_duplicate_awards=False,
                issued_on="2025-01-02T03:04:05Z",
                narrative="n",
            ),
            "POST",
            "/v2/badgeclasses/B1/assertions",
            {
                "recipient": {"identity": "r@x.org", "type": "email", "hashed": True},
                "allowDuplicateAwards": False,
                "narrative": "n",
                "issuedOn": "2025-01-02T03:04:05Z",
            },
        ),
        (
            lambda c: c.issue_assertion("issuers", "I1", recipient_identity="r@x.org", badgeclass="B1"),
            "POST",
            "/v2/issuers/I1/assertions",
            {"recipient": {"identity": "r@x.org", "type": "email", "hashed": True}, "badgeclass": "B1"},
        ),
        (lambda c: c.get_assertion("A1"), "GET", "/v2/assertions/A1", None),
        (
            lambda c: c.revoke_assertion("A1", "mistake"),
            "DELETE",
            "/v2/assertions/A1",
            {"revocation_reason": "mistake"},
        ),
    ],
)
@responses.activate
def test_every_endpoint(call, method, path, body):
    responses.post(TOKEN_URL, json=token_body(1))
    url = BASE + path.split("?")[0]
    responses.add(method, url, json=envelope({"entityId": "X"}))
    client = make_client()
    result = call(client)
    assert result in ([{"entityId": "X"}], {"entityId": "X"}, None)
    (sent,) = api_calls(responses)
    assert sent.request.method == method
    assert urlsplit(sent.request.url).path == urlsplit(BASE + path).path
    if "?" in path:
        assert parse_qs(urlsplit(sent.request.url).query) == parse_qs(path.split("?")[1])
    if body is None:
        assert not sent.request.body
    else:
        assert json.loads(sent.request.body) == body


def test_required_fields_and_roles_checked_before_http():
    client = make_client()
    with pytest.raises(PayloadError, match="email is required"):
        client.create_issuer(name="N", url="https://x.org")
    with pytest.raises(ValueError, match="role"):
        client.add_staff("I1", "a@x.org", "admin")
    with pytest.raises(PayloadError, match="image is required"):
        client.create_badge_class("I1", name="B", description="D")
    with pytest.raises(PayloadError, match="badgeclass"):
        client.issue_assertion("issuers", "I1", recipient_identity="r@x.org")


def test_regions():
    assert resolve_base_url() == "https://api.badgr.io"
    assert resolve_base_url(region="EU") == "https://api.eu.badgr.io"
    assert resolve_base_url("badgr.example.edu/") == "https://badgr.example.edu"
    assert resolve_base_url("http://127.0.0.1:9000/v2", region="eu") == "http://127.0.0.1:9000"
    with pytest.raises(ValueError, match="unknown Canvas Credentials region"):
        resolve_base_url(region="mars")


@responses.activate
def test_issue_with_duplicates_disallowed_is_retried_after_5xx():
    responses.post(TOKEN_URL, json=token_body(1))
    url = f"{BASE}/v2/badgeclasses/B1/assertions"
    responses.post(url, status=502)
    responses.post(url, status=201, json=envelope({"entityId": "A1"}))
    client = make_client(attempts=3)
    assert client.issue_assertion(
        "badgeclasses", "B1", recipient_identity="r@x.org", allow_duplicate_awards=False
    ) == {"entityId": "A1"}
    responses.post(url, status=502)
    with pytest.raises(ServerError):  # duplicates allowed: an unknown outcome is never retried
        client.issue_assertion("badgeclasses", "B1", recipient_identity="r@x.org")
