"""The HTTP core with mocked HTTP: error mapping, the retry rules, secrets."""

from __future__ import annotations

import pickle

import pytest
import requests
import responses

from airflow_provider_credly.client import (
    ApiConnectionError,
    AuthenticationError,
    BadRequestError,
    HttpClient,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnsafeUrlError,
    ValidationError,
)
from airflow_provider_credly.client.http import ApiResponse
from tests.unit.client.conftest import BASE, TOKEN


@pytest.fixture
def client(http):
    return http


@responses.activate
def test_sends_basic_auth_with_token_as_user_and_parses_json(client):
    responses.get(f"{BASE}/organizations", json={"data": [], "metadata": {}})
    resp = client.request("GET", "organizations")
    assert resp.status == 200
    assert resp.data == {"data": [], "metadata": {}}
    sent = responses.calls[0].request
    assert requests.auth._basic_auth_str(TOKEN, "") == sent.headers["Authorization"]
    assert sent.headers["Accept"] == "application/json"


@responses.activate
def test_validation_error_carries_message_errors_and_metadata(client):
    body = {
        "data": {
            "message": "Validation failed: This badge cannot be replaced because it has already been replaced.",
            "errors": [{"attribute": "base", "attribute_label": "Base", "messages": ["already replaced"]}],
        },
        "metadata": {"current_badge_id": "bd137a0a"},
    }
    responses.post(f"{BASE}/organizations/o/badges/b/replace", json=body, status=422)
    with pytest.raises(ValidationError) as info:
        client.request("POST", "organizations/o/badges/b/replace", json_body={})
    err = info.value
    assert err.status == 422
    assert err.method == "POST"
    assert err.path == "/v1/organizations/o/badges/b/replace"
    assert err.message.startswith("Validation failed: This badge cannot be replaced")
    assert err.current_badge_id == "bd137a0a"
    assert err.errors[0]["messages"] == ["already replaced"]
    assert "already replaced" in err.messages
    assert "422 POST /v1/organizations/o/badges/b/replace" in str(err)


@responses.activate
def test_delete_replaced_badge_422_with_null_metadata(client):
    body = {
        "data": {"message": "You can not delete replaced badges. Delete the current version instead."},
        "metadata": None,
    }
    responses.delete(f"{BASE}/organizations/o/badges/b", json=body, status=422)
    with pytest.raises(ValidationError, match="You can not delete replaced badges") as info:
        client.request("DELETE", "organizations/o/badges/b")
    assert info.value.current_badge_id is None
    assert info.value.metadata == {}


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError), (400, BadRequestError)],
)
@responses.activate
def test_status_mapping_without_retry(client, clock, status, error):
    responses.get(f"{BASE}/x", json={"data": {"message": "nope"}}, status=status)
    with pytest.raises(error, match="nope"):
        client.request("GET", "x")
    assert len(responses.calls) == 1
    assert clock.sleeps == []


@responses.activate
def test_get_is_retried_on_5xx_with_exponential_backoff(client, clock):
    responses.get(f"{BASE}/x", status=503)
    responses.get(f"{BASE}/x", status=502)
    responses.get(f"{BASE}/x", json={"data": "ok"})
    assert client.request("GET", "x").data == {"data": "ok"}
    assert clock.sleeps == [1.0, 2.0]


@responses.activate
def test_retry_after_seconds_is_honoured(client, clock):
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/x", json={"data": 1})
    client.request("GET", "x")
    assert clock.sleeps == [7.0]


@responses.activate
def test_rate_limit_error_after_retries_are_spent(client, clock):
    for _ in range(4):
        responses.get(
            f"{BASE}/x", status=429, headers={"Retry-After": "2"}, json={"data": {"message": "slow down"}}
        )
    with pytest.raises(RateLimitError) as info:
        client.request("GET", "x")
    assert info.value.retry_after == 2.0
    assert info.value.status == 429
    assert len(responses.calls) == 4
    assert clock.sleeps == [2.0, 2.0, 2.0]


@responses.activate
def test_post_is_retried_on_429_because_nothing_was_done(client, clock):
    responses.post(f"{BASE}/badges", status=429, headers={"Retry-After": "1"})
    responses.post(f"{BASE}/badges", status=201, json={"data": {"id": "b1"}})
    assert client.request("POST", "badges", json_body={}).data["data"]["id"] == "b1"
    assert len(responses.calls) == 2


@responses.activate
def test_post_is_not_retried_on_5xx_because_it_may_have_issued(client, clock):
    responses.post(f"{BASE}/badges", status=500, body="<html>oops</html>")
    with pytest.raises(ServerError, match="oops"):
        client.request("POST", "badges", json_body={})
    assert len(responses.calls) == 1
    assert clock.sleeps == []


@responses.activate
def test_idempotent_post_is_retried_on_5xx(client, clock):
    responses.post(f"{BASE}/employees", status=500)
    responses.post(f"{BASE}/employees", status=201, json={"data": {}})
    client.request("POST", "employees", json_body={}, idempotent=True)
    assert len(responses.calls) == 2


@responses.activate
def test_post_is_not_retried_after_a_dropped_connection(client, clock):
    responses.post(f"{BASE}/badges", body=requests.exceptions.ConnectionError("Connection aborted."))
    with pytest.raises(ApiConnectionError, match="may have been applied"):
        client.request("POST", "badges", json_body={})
    assert len(responses.calls) == 1


@responses.activate
def test_post_is_retried_when_the_connection_could_not_be_opened(client, clock):
    responses.post(f"{BASE}/badges", body=requests.exceptions.ConnectTimeout("connect timeout"))
    responses.post(f"{BASE}/badges", status=201, json={"data": {"id": "b"}})
    client.request("POST", "badges", json_body={})
    assert len(responses.calls) == 2
    assert clock.sleeps == [1.0]


@responses.activate
def test_get_is_retried_after_dropped_connections_then_gives_up(client, clock):
    for _ in range(4):
        responses.get(f"{BASE}/x", body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(ApiConnectionError, match="after 4 attempt"):
        client.request("GET", "x")
    assert clock.sleeps == [1.0, 2.0, 4.0]


@responses.activate
def test_total_time_budget_stops_retries(clock):
    client = HttpClient(
        BASE,
        retry=RetryPolicy(max_attempts=10, total_timeout=5.0, jitter=0.0),
        sleep=clock.sleep,
        clock=clock,
    )
    for _ in range(10):
        responses.get(f"{BASE}/x", status=503, headers={"Retry-After": "3"})
    with pytest.raises(ServerError):
        client.request("GET", "x")
    assert clock.sleeps == [3.0]  # a second 3 s wait would pass the 5 s budget


def test_foreign_urls_are_refused_before_any_request(client):
    with pytest.raises(UnsafeUrlError, match="evil.example"):
        client.url_for("https://evil.example/v1/organizations")
    with pytest.raises(UnsafeUrlError):
        client.url_for("http://api.credly.test/v1/x")  # scheme downgrade
    with pytest.raises(UnsafeUrlError):
        client.url_for("https://api.credly.test:8443/v1/x")
    assert client.url_for("https://API.credly.test:443/v1/x") == "https://API.credly.test:443/v1/x"
    assert client.url_for("/organizations/1") == f"{BASE}/organizations/1"


@responses.activate
def test_redirects_are_not_followed(client):
    responses.get(f"{BASE}/x", status=302, headers={"Location": "https://elsewhere.example/steal"})
    responses.get("https://elsewhere.example/steal", json={})
    resp = client.request("GET", "x")
    assert resp.status == 302
    assert len(responses.calls) == 1


@responses.activate
def test_token_never_in_repr_errors_or_pickles(client):
    responses.get(f"{BASE}/x", status=401, json={"data": {"message": "Unauthorized"}})
    with pytest.raises(AuthenticationError) as info:
        client.request("GET", "x", params={"filter": "state::accepted"})
    texts = [repr(client), repr(client.auth), str(info.value), repr(info.value), repr(info.value.__dict__)]
    assert all(TOKEN not in t for t in texts)
    assert "state::accepted" not in str(info.value)  # no query string (personal data) in messages
    clone = pickle.loads(pickle.dumps(info.value))
    assert type(clone) is AuthenticationError
    assert clone.status == 401
    assert str(clone) == str(info.value)


def test_tls_verification_is_on_by_default(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert HttpClient(BASE).session.verify is True
    assert HttpClient(BASE, verify=False).session.verify is False  # only when asked


def test_ca_bundle_from_the_environment_keeps_verification_on(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    assert HttpClient(BASE).session.verify == "/etc/corp-ca.pem"
    assert HttpClient(BASE, verify="/other.pem").session.verify == "/other.pem"  # an explicit bundle wins
    assert HttpClient(BASE, verify=False).session.verify is False


def test_proxy_environment_is_read_once_and_honours_no_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = HttpClient(BASE)
    assert client.session.proxies.get("https") == "http://proxy.corp:3128"
    assert client.session.trust_env is False  # not re-read from os.environ on every request
    monkeypatch.setenv("NO_PROXY", "api.credly.test")
    assert "https" not in HttpClient(BASE).session.proxies


def test_response_body_is_parsed_on_first_use_only():
    resp = ApiResponse(200, BASE, {}, b'{"data": [1]}')
    assert resp.content == b'{"data": [1]}'
    assert resp.data == {"data": [1]}
    assert ApiResponse(200, BASE, {}, b"").data is None
    assert ApiResponse(200, BASE, {}, b"<html>").data is None


def test_base_url_must_be_absolute():
    with pytest.raises(ValueError, match="absolute"):
        HttpClient("api.credly.com/v1")


class RefreshingAuth(requests.auth.AuthBase):
    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r

    def on_unauthorized(self) -> bool:
        self.refreshes += 1
        self.token = "new"
        return True


@responses.activate
def test_401_refreshes_the_credential_and_retries_once(clock):
    auth = RefreshingAuth()
    client = HttpClient(BASE, auth=auth, sleep=clock.sleep, clock=clock)
    responses.get(f"{BASE}/x", status=401)
    responses.get(f"{BASE}/x", status=401)
    with pytest.raises(AuthenticationError):
        client.request("GET", "x")
    assert auth.refreshes == 1
    assert len(responses.calls) == 2
    assert responses.calls[1].request.headers["Authorization"] == "Bearer new"


@responses.activate
def test_observers_see_every_response_retried_ones_included(client):
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "1"})
    responses.get(f"{BASE}/x", status=503)
    responses.get(f"{BASE}/x", json={"data": 1})
    responses.get(f"{BASE}/x", json={"data": 2})
    seen: list[int] = []
    with client.observe(seen.append):
        assert client.session.hooks["response"] == []  # the session is not edited from outside
        client.request("GET", "x")
    assert seen == [429, 503, 200]
    client.request("GET", "x")
    assert seen == [429, 503, 200]  # removed on leaving the block


@responses.activate
def test_observers_nest_and_their_errors_reach_the_caller(client):
    responses.get(f"{BASE}/x", json={"data": 1})
    outer: list[int] = []
    inner: list[int] = []

    def refuse(status: int) -> None:
        raise RuntimeError(f"observer saw {status}")

    with client.observe(outer.append):
        with client.observe(inner.append):
            client.request("GET", "x")
        client.request("GET", "x")
        with client.observe(refuse), pytest.raises(RuntimeError, match="observer saw 200"):
            client.request("GET", "x")
    assert (outer, inner) == ([200, 200, 200], [200])


@responses.activate
def test_observers_added_and_removed_from_many_threads(client):
    import threading

    responses.get(f"{BASE}/x", json={"data": 1})
    kept: list[int] = []
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(200):
                with client.observe(lambda status: None):
                    pass
            client.request("GET", "x")
        except BaseException as exc:  # reported below: a thread's error is otherwise lost
            errors.append(exc)

    with client.observe(kept.append):
        threads = [threading.Thread(target=churn) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert kept == [200] * 8  # no add or remove of another thread lost this observer
    late: list[int] = []
    with client.observe(late.append):
        client.request("GET", "x")
    assert late == [200]
    assert kept == [200] * 8
