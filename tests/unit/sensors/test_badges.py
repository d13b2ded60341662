"""CredlyBadgeSensor: validation before waiting, poke results, deferral and its completion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, TaskDeferred

from airflow_provider_credly.sensors.badges import CredlyBadgeSensor
from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
from airflow_provider_credly.triggers.badges import CredlyBadgeTrigger
from tests.conftest import set_connection


@pytest.fixture
def emu(monkeypatch):
    emulator = run_emulator(EmulatorState(seed=4, badges=60))
    set_connection(
        monkeypatch,
        "credly_default",
        conn_type="credly",
        host=emulator.base_url,
        password=emulator.token,
        extra={"organization_id": emulator.org_id, "backoff_base": 0.01, "backoff_max": 0.05},
    )
    yield emulator
    emulator.stop()


def _sensor(**kwargs):
    return CredlyBadgeSensor(task_id="wait", poke_interval=0.1, timeout=30, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": {"colour": "red"}}, "unknown filter"),
        ({"filters": {"state": "shiny"}}, "state"),
        ({"changed_since": "yesterday"}, "changed_since"),
        ({"min_count": 0}, "min_count"),
        ({"filters": {"updated_at_min": "2026-01-01"}, "changed_since": "2026-02-01T00:00:00Z"}, "not both"),
    ],
)
def test_bad_input_fails_before_any_request(emu, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _sensor(**kwargs).poke({})
    with pytest.raises(ValueError, match=message):
        _sensor(deferrable=True, **kwargs).execute({})
    assert emu.state.request_count("GET", "badges.list") == 0


def test_poke_returns_count_and_ids(emu):
    state = emu.state
    accepted = state.find_badges(state="accepted")
    result = _sensor(filters={"state": "accepted"}, max_results=5, min_count=3).poke({})
    assert result.is_done is True
    assert result.xcom_value["count"] == len(accepted)
    assert len(result.xcom_value["ids"]) == 5
    assert set(result.xcom_value["ids"]) <= {b["id"] for b in accepted}

    missing = _sensor(filters={"recipient_email": "nobody@example.com"}).poke({})
    assert missing.is_done is False
    assert missing.xcom_value == {"count": 0, "ids": []}


def test_poke_changed_since_compares_exact_times(emu):
    state = emu.state
    badge = state.find_badges(state="accepted")[0]
    state.revoke_badge(badge["id"], reason="test")
    since = datetime.now(UTC).replace(microsecond=0)
    state.issue_badge(
        badge_template_id=state.templates[3].id,
        recipient_email="fresh@example.com",
        issued_to_first_name="Fresh",
        issued_to_last_name="Earner",
        issued_at="2026-11-22 10:00:00 +0000",
    )
    result = _sensor(changed_since=since.isoformat(), include_badges=True).poke({})
    # same day, but only the badge issued after `since` counts (the revoke happened before it)
    assert result.xcom_value["count"] in (1, 2)
    assert "fresh@example.com" in [b["recipient_email"] for b in result.xcom_value["badges"]]


def test_deferrable_returns_at_once_when_already_matching(emu):
    result = _sensor(deferrable=True, filters={"state": "accepted"}, max_results=2).execute({})
    assert result["count"] > 0
    assert len(result["ids"]) == 2


def test_deferrable_defers_with_an_absolute_deadline(emu):
    sensor = _sensor(deferrable=True, filters={"recipient_email": "later@example.com"}, min_count=1)
    before = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    trigger = info.value.trigger
    assert isinstance(trigger, CredlyBadgeTrigger)
    assert info.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["credly_conn_id"] == "credly_default"
    assert kwargs["filter_text"] == "recipient_email::later@example.com"
    assert emu.token not in repr(kwargs)
    end = datetime.fromisoformat(kwargs["end_time"])
    assert 29 <= (end - before).total_seconds() <= 31


def test_execute_complete_outcomes():
    sensor = _sensor(deferrable=True)
    ok = {"status": "success", "message": "1 found", "count": 1, "ids": ["x"]}
    assert sensor.execute_complete({}, ok) == {"count": 1, "ids": ["x"]}
    with pytest.raises(AirflowException, match="timed out"):
        sensor.execute_complete({}, {"status": "timeout", "message": "late"})
    with pytest.raises(AirflowSkipException):
        _sensor(deferrable=True, soft_fail=True).execute_complete(
            {}, {"status": "timeout", "message": "late"}
        )
    with pytest.raises(AirflowException, match="boom"):
        sensor.execute_complete({}, {"status": "error", "message": "boom"})
    with pytest.raises(AirflowException, match="unexpected event"):
        sensor.execute_complete({}, None)
