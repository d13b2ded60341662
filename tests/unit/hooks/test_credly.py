from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses

from airflow_provider_credly.client import CredlyClient
from airflow_provider_credly.hooks.credly import CredlyHook
from tests.conftest import set_connection

TOKEN = "hook-token-1234567"


@pytest.fixture
def conn(monkeypatch):
    set_connection(
        monkeypatch,
        "credly_default",
        conn_type="credly",
        host="https://sandbox-api.credly.com/v1",
        password=TOKEN,
        extra={
            "organization_id": "org-9",
            "timeout": 5,
            "connect_timeout": 2,
            "max_retries": 2,
            "backoff_base": 0.1,
        },
    )


def test_hook_builds_the_client_from_the_connection(conn):
    hook = CredlyHook()
    client = hook.get_conn()
    assert isinstance(client, CredlyClient)
    assert client.http.base_url == "https://sandbox-api.credly.com/v1"
    assert client.organization_id == "org-9" == hook.organization_id
    assert client.http.timeout == (2.0, 5.0)
    assert client.http.retry.max_attempts == 3
    assert client.http.retry.backoff_base == 0.1
    assert hook.get_conn() is client  # built once
    assert TOKEN not in repr(hook)
    assert TOKEN not in repr(client)
    assert CredlyHook(organization_id="other").organization_id == "other"


def test_token_is_masked_in_logs(conn):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    CredlyHook().get_conn()
    assert TOKEN not in str(_secrets_masker().redact(f"the token is {TOKEN}"))


def test_missing_token_is_a_clear_error(monkeypatch):
    set_connection(monkeypatch, "credly_empty", conn_type="credly", extra={"organization_id": "o"})
    with pytest.raises(ValueError, match="no authorization token"):
        CredlyHook("credly_empty").get_conn()


@responses.activate
def test_test_connection_reports_success_and_failure(conn):
    org_url = "https://sandbox-api.credly.com/v1/organizations/org-9"
    responses.get(org_url, json={"data": {"id": "org-9", "name": "Acme"}})
    created = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    tokens = [
        {"id": "t0", "token": "other-token-9876543", "created_at": "2020-01-01T00:00:00Z"},
        {"id": "t1", "token": TOKEN, "created_at": created, "read_enabled": True, "write_enabled": False},
    ]
    meta = {"next_page_url": None}
    responses.get(f"{org_url}/authorization_tokens", json={"data": tokens, "metadata": meta})
    ok, message = CredlyHook().test_connection()
    assert ok
    assert message.startswith("Connected to Credly organization 'Acme'; the token expires in 160.0 day(s)")
    assert message.endswith("permissions: read-only")
    assert TOKEN not in message
    responses.replace(responses.GET, org_url, json={"data": {"message": "Unauthorized"}}, status=401)
    ok, message = CredlyHook().test_connection()
    assert not ok
    assert "401" in message
    assert "Unauthorized" in message
    assert TOKEN not in message


def test_ui_field_behaviour_relabels_the_token():
    behaviour = CredlyHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "Authorization token"
    assert "login" in behaviour["hidden-fields"]


def test_provider_info_registers_the_connection_type():
    from airflow_provider_credly.get_provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-credly"
    credly = next(c for c in info["connection-types"] if c["connection-type"] == "credly")
    assert credly["hook-class-name"] == "airflow_provider_credly.hooks.credly.CredlyHook"
    assert "organization_id" in credly["conn-fields"]
    assert credly["conn-fields"]["lifetime_days"]["schema"]["default"] == 180
    assert credly["conn-fields"]["expiry_warn_days"]["schema"]["default"] == 30


def test_airflow_cli_lists_the_provider_and_its_connection_types(tmp_path):
    import os
    import subprocess
    import sys

    def airflow(*args: str) -> str:
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
        command = [sys.executable, "-m", "airflow", *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=True
        ).stdout

    out = airflow("providers", "hooks")
    assert "airflow_provider_credly.hooks.credly.CredlyHook" in out
    assert "airflow_provider_credly.hooks.canvas_credentials.CanvasCredentialsHook" in out
    assert "airflow-provider-credly" in airflow("providers", "list")


@responses.activate
def test_check_token_is_best_effort_when_the_token_is_not_listed_or_unreadable(conn, capsys):
    url = "https://sandbox-api.credly.com/v1/organizations/org-9/authorization_tokens"
    other = {"id": "t0", "token": "someone-elses-token", "created_at": "2026-01-01T00:00:00Z"}
    responses.get(url, json={"data": [other], "metadata": {"next_page_url": None}})
    hook = CredlyHook()
    assert hook.check_token(require="write") is None  # not listed: nothing to refuse on
    assert hook.check_token() is None
    responses.replace(responses.GET, url, json={"data": {"message": "Forbidden"}}, status=403)
    assert CredlyHook().check_token(require="write") is None
    out = capsys.readouterr().out
    assert out.count("is not among the organization's authorization tokens") == 1
    assert "Could not check the Credly token" in out and "403" in out
    assert TOKEN not in out and "someone-elses-token" not in out
    assert len(responses.calls) == 2  # one look-up per hook


def test_connection_form_fields_are_not_masked_and_have_help_text():
    """Airflow masks extras whose names contain "token", "secret"...: such a field shows "***" in the form."""
    from airflow.sdk.log import mask_secret  # noqa: F401  (initialises the masker as tasks see it)

    from airflow_provider_credly.get_provider_info import get_provider_info

    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # pragma: no cover - older layouts
        from airflow._shared.secrets_masker import should_hide_value_for_key

    for conn_type in get_provider_info()["connection-types"]:
        for name, field in conn_type["conn-fields"].items():
            assert not should_hide_value_for_key(name), (conn_type["connection-type"], name)
            assert field["label"] and field["description"], (conn_type["connection-type"], name)
            # a null among the choices is rendered as a literal "null" option
            assert None not in field["schema"].get("enum", []), name
        behaviour = conn_type["ui-field-behaviour"]
        # the port stays visible: Airflow 3.3.2's Test button refuses a saved connection without one
        assert "port" not in behaviour["hidden-fields"]
        assert "443" in behaviour["placeholders"]["port"]


def test_canvas_region_choices_are_the_clients_regions():
    from airflow_provider_credly.client.canvas import REGION_BASE_URLS
    from airflow_provider_credly.get_provider_info import CANVAS_REGIONS

    assert set(CANVAS_REGIONS) == set(REGION_BASE_URLS)
    for region, label in CANVAS_REGIONS.items():
        assert REGION_BASE_URLS[region].removeprefix("https://") in label
