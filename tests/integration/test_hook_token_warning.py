"""``CredlyHook`` warns of a token close to expiry on its own first request, over real loopback HTTP to the
emulator: a TaskFlow task using the hook directly gets the warning the operators' tasks get, once per hook,
with no extra look-up when an operator already checked, and the check never fails the task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_credly.hooks.credly import CredlyHook
from tests.conftest import connect_credly

pytestmark = pytest.mark.integration

WARNING = "fewer than 30 days left"


def _connect(monkeypatch: pytest.MonkeyPatch, emu: Any, **extra: Any) -> None:
    connect_credly(monkeypatch, emu, max_retries=1, backoff_max=None, **extra)


def _lookups(emu: Any) -> int:
    return emu.state.request_count("GET", "authorization_tokens.list")


def test_a_taskflow_hook_warns_once_on_its_first_request(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(token_age_days=170)
    _connect(monkeypatch, emu)
    hook = CredlyHook()
    client = hook.get_conn()
    assert _lookups(emu) == 0  # building the client sends nothing
    assert client.get_organization()["id"] == emu.org_id
    assert sum(1 for _ in client.iter_badges()) == emu.state.badges_count()
    hook.client.get_organization()
    assert hook.check_token() is not None  # an explicit check later reuses the first one
    out = capsys.readouterr().out
    assert out.count(WARNING) == 1 and "expires in 10.0 day(s)" in out
    assert _lookups(emu) == 1
    assert emu.token not in out
    # once per hook instance: another task (another hook) is warned too
    CredlyHook().get_conn().get_organization()
    assert capsys.readouterr().out.count(WARNING) == 1
    assert _lookups(emu) == 2


def test_no_warning_with_days_to_spare_or_when_turned_off(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(token_age_days=100)
    _connect(monkeypatch, emu)
    CredlyHook().get_conn().get_organization()
    assert _lookups(emu) == 1 and "days left" not in capsys.readouterr().out
    old = credly_emulator_factory(token_age_days=175)
    _connect(monkeypatch, old)
    CredlyHook(warn_token_expiry=False).get_conn().get_organization()
    assert _lookups(old) == 0 and "days left" not in capsys.readouterr().out


class _TI:
    try_number = 1
    dag_id, run_id = "d", "r"

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def test_an_operator_that_checked_sends_no_second_look_up(credly_emulator_factory, monkeypatch, capsys):
    from airflow_provider_credly.operators.badges import CredlyIssueBadgeOperator, CredlyRevokeBadgeOperator

    emu = credly_emulator_factory(token_age_days=175)
    _connect(monkeypatch, emu)
    context = {"logical_date": datetime(2026, 11, 1, tzinfo=UTC), "ti": _TI()}
    issue = CredlyIssueBadgeOperator(
        task_id="issue",
        recipient_email="ada@example.com",
        issued_to_first_name="Ada",
        issued_to_last_name="Lovelace",
        badge_template_id=emu.state.templates[1].id,
    )
    badge = issue.execute(context)  # checks write_enabled before its POST
    issue.post_execute(context, badge)
    assert _lookups(emu) == 1
    # an operator that checks only after its work: its first request checked, post_execute adds nothing
    revoke = CredlyRevokeBadgeOperator(task_id="revoke", badge_ids=[badge["id"]], reason="test")
    revoke.execute(context)
    revoke.post_execute(context, None)
    assert _lookups(emu) == 2
    out = capsys.readouterr().out
    assert out.count(WARNING) == 2  # one per task
    assert emu.token not in out


def test_a_failing_check_never_fails_the_request(credly_emulator_factory, monkeypatch, capsys):
    emu = credly_emulator_factory(error_rate=1.0, fail_paths="authorization_tokens")
    _connect(monkeypatch, emu)
    hook = CredlyHook()
    assert hook.get_conn().get_organization()["id"] == emu.org_id
    hook.get_conn().get_organization()
    assert "Could not check the Credly token" in capsys.readouterr().out
    assert _lookups(emu) == 2  # one look-up (max_retries=1), not one per request
