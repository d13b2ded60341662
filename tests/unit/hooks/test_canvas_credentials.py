"""CanvasCredentialsHook: connection -> client, regions, test_connection (mocked HTTP)."""

from __future__ import annotations

import pytest
import responses

from airflow_provider_credly.client.canvas import CanvasCredentialsClient
from airflow_provider_credly.get_provider_info import get_provider_info
from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook
from tests.conftest import set_connection

PASSWORD = "hook-password-123"


def define(monkeypatch, **fields):
    base = {"conn_type": "canvas_credentials", "login": "admin@example.edu", "password": PASSWORD}
    set_connection(monkeypatch, "canvas_credentials_default", **{**base, **fields})


@pytest.mark.parametrize(
    ("host", "port", "extra", "expected"),
    [
        (None, None, {}, "https://api.badgr.io"),
        (None, None, {"region": "eu"}, "https://api.eu.badgr.io"),
        ("api.ca.badgr.io", None, {"region": "eu"}, "https://api.ca.badgr.io"),
        ("http://127.0.0.1", 8123, {}, "http://127.0.0.1:8123"),
        ("http://127.0.0.1:9000/", 1, {}, "http://127.0.0.1:9000"),
    ],
)
def test_base_url(monkeypatch, host, port, extra, expected):
    define(monkeypatch, host=host, port=port, extra=extra)
    assert CanvasCredentialsHook().client.http.base_url == expected


def test_client_settings(monkeypatch):
    define(
        monkeypatch,
        extra={
            "client_id": "my-app",
            "scope": "rw:issuer",
            "timeout": 5,
            "max_retries": 1,
            "refresh_margin": 5,
        },
    )
    hook = CanvasCredentialsHook()
    client = hook.get_conn()
    assert isinstance(client, CanvasCredentialsClient)
    assert client is hook.get_conn()
    assert client.http.timeout == (10.0, 5.0)
    assert client.http.retry.max_attempts == 2
    auth = client.http.auth
    assert (auth.client_id, auth.scope, auth.refresh_margin) == ("my-app", "rw:issuer", 5.0)
    assert PASSWORD not in repr(hook) + repr(client) + repr(auth)


def test_missing_credentials(monkeypatch):
    define(monkeypatch, login="")
    with pytest.raises(ValueError, match="e-mail in login"):
        CanvasCredentialsHook().get_conn()


@responses.activate
def test_test_connection(monkeypatch):
    define(monkeypatch, extra={"max_retries": 0})
    responses.post("https://api.badgr.io/o/token", json={"access_token": "t", "expires_in": 60})
    responses.get("https://api.badgr.io/v2/issuers", json={"status": {}, "result": [{"entityId": "a"}]})
    assert CanvasCredentialsHook().test_connection() == (
        True,
        "Connected to Canvas Credentials; the account is staff of 1 issuer(s)",
    )


@responses.activate
def test_test_connection_bad_password(monkeypatch):
    define(monkeypatch, extra={"max_retries": 0})
    responses.post("https://api.badgr.io/o/token", status=400, json={"error": "invalid_grant"})
    ok, message = CanvasCredentialsHook().test_connection()
    assert not ok
    assert "invalid_grant" in message
    assert PASSWORD not in message


def test_registered_connection_type():
    info = get_provider_info()
    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert types["canvas_credentials"]["hook-class-name"].endswith("CanvasCredentialsHook")
    modules = [m for hook in info["hooks"] for m in hook["python-modules"]]
    assert "airflow_provider_credly.hooks.canvas_credentials" in modules
    assert CanvasCredentialsHook.get_ui_field_behaviour()["relabeling"]["login"] == "User name (e-mail)"
