"""Token lifecycle over real loopback HTTP against the emulator: the connection's own token is found among
the organization's tokens (every listed value masked), its days left and permissions reach the hook's
``test_connection``, one warning per hook, the issuing operators' write check, and the expiry sensor.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_credly.client import CredlyClient, RetryPolicy
from airflow_provider_credly.client.tokens import TOKEN_MASK
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.operators.badges import CredlyBulkIssueBadgesOperator, CredlyIssueBadgeOperator
from airflow_provider_credly.sensors.tokens import CredlyTokenExpirySensor
from tests.conftest import connect_credly

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.02)


def _client(emu: Any, token: str | None = None) -> CredlyClient:
    return CredlyClient.create(token or emu.token, emu.org_id, base_url=emu.base_url, retry=FAST)


def _connect(monkeypatch: pytest.MonkeyPatch, emu: Any, token: str | None = None, **extra: Any) -> None:
    connect_credly(monkeypatch, emu, token=token or None, max_retries=1, backoff_max=None, **extra)


class _TI:
    try_number = 1
    dag_id, run_id = "d", "r"

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _ctx() -> dict[str, Any]:
    return {"logical_date": datetime(2026, 11, 1, tzinfo=UTC), "ti": _TI()}


def test_every_listed_token_is_masked_and_the_own_one_is_found(credly_emulator_factory):
    emu = credly_emulator_factory(token_age_days=150)
    client = _client(emu)
    pages = list(client.iter_authorization_token_pages())
    records = [t for p in pages for t in p.items]
    assert pages[0].metadata["total_count"] == len(records) == 3
    assert {t["token"] for t in records} == {TOKEN_MASK}
    assert {t["token"] for t in client.iter_authorization_tokens()} == {TOKEN_MASK}
    dumped = json.dumps(records)
    assert all(t.token not in dumped for t in emu.state.tokens)

    own = client.find_own_authorization_token()
    assert own is not None and own["id"] == emu.state.token_id and own["token"] == TOKEN_MASK
    status = client.get_token_status()
    assert status is not None
    assert status.days_left == pytest.approx(30.0, abs=0.2)
    assert status.permissions == ("read", "write", "delete")
    assert emu.token not in json.dumps(status.to_dict())
    # another token of the organization is recognised as itself, not as the first one listed
    other = emu.state.tokens[2]
    other_status = _client(emu, other.token).get_token_status()
    assert other_status is not None and other_status.token_id == other.id and other_status.read_only


def test_lifetime_is_a_setting(credly_emulator_factory):
    emu = credly_emulator_factory(token_age_days=100)
    status = _client(emu).get_token_status(lifetime_days=90)
    assert status is not None and status.days_left == pytest.approx(-10.0, abs=0.2)
    assert "expired" in status.describe()


def test_organization_pages_carry_their_metadata(credly_emulator):
    page = next(_client(credly_emulator).iter_organization_pages())
    assert page.metadata["total_count"] == 1 and page.metadata["per"] == 50
    assert [o["id"] for o in page.items] == [credly_emulator.org_id]


def test_test_connection_reports_days_left_and_a_read_only_token(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory(token_age_days=170, token_permissions=["read"])
    _connect(monkeypatch, emu)
    ok, message = CredlyHook().test_connection()
    assert ok, message
    assert "expires in 10.0 day(s)" in message
    assert "permissions: read-only" in message
    assert "fewer than 30 days left" in message
    assert emu.token not in message


def test_test_connection_lists_full_permissions(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory(token_age_days=20)
    _connect(monkeypatch, emu, lifetime_days=365)
    ok, message = CredlyHook().test_connection()
    assert ok and "expires in 345.0 day(s)" in message
    assert "permissions: read, write, delete" in message and "renew" not in message


def test_one_warning_per_hook_below_expiry_warn_days(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(token_age_days=160)
    _connect(monkeypatch, emu, expiry_warn_days=45)
    hook = CredlyHook()
    for _ in range(3):
        assert hook.check_token() is not None
    out = capsys.readouterr().out
    assert out.count("fewer than 45 days left") == 1
    assert emu.state.request_count("GET", "authorization_tokens.list") == 1
    assert emu.token not in out


def test_the_first_drafts_extra_names_still_work(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(token_age_days=20)
    _connect(monkeypatch, emu, token_lifetime_days=50, token_warn_days=40)
    ok, message = CredlyHook().test_connection()
    assert ok and "expires in 30.0 day(s)" in message and "fewer than 40 days left" in message
    # the new names win where both are set
    _connect(monkeypatch, emu, token_lifetime_days=50, lifetime_days=365, expiry_warn_days=10)
    ok, message = CredlyHook().test_connection()
    assert ok and "expires in 345.0 day(s)" in message and "renew" not in message


def test_no_warning_with_days_to_spare_or_when_turned_off(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(token_age_days=100)
    _connect(monkeypatch, emu)
    CredlyHook().check_token()
    _connect(monkeypatch, emu, expiry_warn_days=0, lifetime_days=101)
    CredlyHook().check_token()
    assert "days left" not in capsys.readouterr().out


def _issue_op(emu: Any) -> CredlyIssueBadgeOperator:
    return CredlyIssueBadgeOperator(
        task_id="issue",
        recipient_email="ada@example.com",
        issued_to_first_name="Ada",
        issued_to_last_name="Lovelace",
        badge_template_id=emu.state.templates[1].id,
    )


def test_issuing_with_a_read_only_token_fails_before_its_first_post(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory(token_permissions=["read"])
    _connect(monkeypatch, emu)
    with pytest.raises(AirflowFailException, match="lacks write_enabled \\(read-only\\); nothing was sent"):
        _issue_op(emu).execute(_ctx())
    bulk = CredlyBulkIssueBadgesOperator(
        task_id="bulk",
        rows=[{"recipient_email": "b@example.com", "issued_to_first_name": "B", "issued_to_last_name": "C"}],
        defaults={"badge_template_id": emu.state.templates[1].id},
    )
    with pytest.raises(AirflowException, match="lacks write_enabled"):
        bulk.execute(_ctx())
    assert emu.state.request_count("POST", "badges.create") == 0
    assert emu.state.issue_count == 0


def test_issuing_with_a_write_token_returns_the_location(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory()
    _connect(monkeypatch, emu)
    result = _issue_op(emu).execute(_ctx())
    assert result["outcome"] == "issued"
    assert result["location"] == f"{emu.org_url}/badges/{result['id']}"
    assert emu.state.request_count("POST", "badges.create") == 1


def test_emulator_refuses_what_a_token_may_not_do(credly_emulator_factory):
    emu = credly_emulator_factory()
    reader = emu.state.add_token("reader-token-1", permissions=["read"])
    client = _client(emu, reader.token)
    assert client.get_organization()["id"] == emu.org_id
    with pytest.raises(Exception, match="403"):
        client.update_organization(name="x")


def test_sensor_passes_with_days_to_spare_and_pushes_no_token(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory(token_age_days=30)
    _connect(monkeypatch, emu)
    sensor = CredlyTokenExpirySensor(task_id="t", min_days_left=100, require=["write"])
    result = sensor.poke(_ctx())
    assert result.is_done
    assert result.xcom_value["days_left"] == pytest.approx(150.0, abs=0.2)
    assert result.xcom_value["write_enabled"] is True
    assert emu.token not in json.dumps(result.xcom_value)


def test_sensor_fails_below_its_threshold_or_without_a_permission(credly_emulator_factory, monkeypatch):
    emu = credly_emulator_factory(token_age_days=170, token_permissions=["read"])
    _connect(monkeypatch, emu)
    with pytest.raises(AirflowException, match="fewer than 30 days left"):
        CredlyTokenExpirySensor(task_id="t").poke(_ctx())  # threshold: expiry_warn_days
    with pytest.raises(AirflowException, match="lacks write_enabled"):
        CredlyTokenExpirySensor(task_id="t", min_days_left=1, require="write").poke(_ctx())


def test_every_credly_operator_task_warns_after_it_ran(credly_emulator_factory, monkeypatch, capsys):
    from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator

    emu = credly_emulator_factory(token_age_days=175)
    _connect(monkeypatch, emu)
    op = CredlyEmployeeSyncOperator(task_id="sync", roster=[], dry_run=True)
    op.post_execute(_ctx(), None)
    op.post_execute(_ctx(), None)
    out = capsys.readouterr().out
    assert out.count("fewer than 30 days left") == 1
    assert emu.token not in out


def test_the_badge_sensor_warns_after_it_ran(credly_emulator_factory, monkeypatch, capsys):
    from airflow_provider_credly.sensors.badges import CredlyBadgeSensor

    emu = credly_emulator_factory(token_age_days=175)
    _connect(monkeypatch, emu)
    sensor = CredlyBadgeSensor(task_id="wait", filters={"state": "accepted"})
    sensor.post_execute(_ctx(), None)
    out = capsys.readouterr().out
    assert out.count("fewer than 30 days left") == 1
    assert emu.token not in out


def test_a_task_that_fails_still_warns_and_one_refused_on_its_input_sends_nothing(
    credly_emulator_factory, monkeypatch, capsys
):
    from airflow_provider_credly.client.errors import ServerError
    from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator

    emu = credly_emulator_factory(token_age_days=175, error_rate=1.0, fail_paths="/employees")
    _connect(monkeypatch, emu)
    with pytest.raises(ServerError):
        CredlyEmployeeSyncOperator(task_id="sync", roster=[], dry_run=True).execute(_ctx())
    out = capsys.readouterr().out
    assert out.count("fewer than 30 days left") == 1
    assert emu.token not in out

    fresh = credly_emulator_factory(token_age_days=175)
    _connect(monkeypatch, fresh)
    with pytest.raises(ValueError):
        CredlyEmployeeSyncOperator(task_id="sync", roster=[{"email": "no-key"}], dry_run=True).execute(_ctx())
    assert fresh.state.request_count("GET", "authorization_tokens.list") == 0


def test_the_warning_never_fails_a_task(credly_emulator_factory, monkeypatch, capsys):
    from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator

    emu = credly_emulator_factory(error_rate=1.0, fail_paths="authorization_tokens")
    _connect(monkeypatch, emu)
    CredlyEmployeeSyncOperator(task_id="sync", roster=[], dry_run=True).post_execute(_ctx(), None)
    assert "Could not check the Credly token" in capsys.readouterr().out
    assert emu.state.request_count("GET", "authorization_tokens.list") == 2  # max_retries=1
