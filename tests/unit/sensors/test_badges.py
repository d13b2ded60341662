"""CredlyBadgeSensor: validation before waiting, poke results, deferral and its completion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_credly.client.errors import ServerError
from airflow_provider_credly.sensors.badges import CredlyBadgeSensor
from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
from airflow_provider_credly.triggers.badges import CredlyBadgeTrigger
from tests.conftest import connect_credly


@pytest.fixture
def emu(monkeypatch):
    emulator = run_emulator(EmulatorState(seed=4, badges=60))
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    yield emulator
    emulator.stop()


def _sensor(**kwargs):
    return CredlyBadgeSensor(task_id="wait", **{"poke_interval": 0.1, "timeout": 30, **kwargs})


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


def _bad_token(monkeypatch, emu):
    connect_credly(
        monkeypatch, emu, token="wrong-token-0000", max_retries=0, backoff_base=None, backoff_max=None
    )


@pytest.mark.parametrize("flags", [{}, {"soft_fail": True}, {"silent_fail": True}])
def test_a_401_fails_the_sensor_for_good_in_every_mode(emu, monkeypatch, flags):
    _bad_token(monkeypatch, emu)
    # poke mode: neither "not yet" (silent_fail) nor a skip (soft_fail), and not retried
    with pytest.raises(AirflowFailException, match="401"):
        _sensor(filters={"state": "accepted"}, **flags).execute({})
    with pytest.raises(AirflowFailException, match="401"):
        _sensor(filters={"state": "accepted"}, deferrable=True, **flags).execute({})
    assert emu.state.request_count("GET", "badges.list") == 2  # one poke each: no wait for a 401


def test_invalid_input_fails_for_good_even_with_soft_fail(emu):
    with pytest.raises(AirflowFailException, match="unknown filter") as info:
        _sensor(filters={"colour": "red"}, soft_fail=True).execute({})
    assert isinstance(info.value, ValueError)  # still the validation error it was
    # never_fail asks for a skip of any failure: it keeps it
    with pytest.raises(AirflowSkipException):
        _sensor(filters={"colour": "red"}, never_fail=True).execute({})


def test_transient_errors_keep_the_sensors_behaviour(emu):
    emu.set_faults(error_rate=1.0, fail_paths="/badges")
    sensor = _sensor(filters={"state": "accepted"}, timeout=0.3)
    with pytest.raises(ServerError) as info:
        sensor.execute({})
    assert not isinstance(info.value, AirflowFailException)  # retryable
    # silent_fail: a 5xx is "not yet", until the wait runs out (soft_fail then skips)
    with pytest.raises(AirflowSensorTimeout):
        _sensor(filters={"state": "accepted"}, timeout=0.3, silent_fail=True).execute({})
    with pytest.raises(AirflowSkipException):
        _sensor(filters={"state": "accepted"}, timeout=0.3, silent_fail=True, soft_fail=True).execute({})


def test_a_permanent_trigger_error_fails_for_good_after_the_deferral():
    permanent = {"status": "error", "message": "AuthenticationError: 401", "permanent": True}
    transient = {"status": "error", "message": "ServerError: 503", "permanent": False}
    for flags in ({}, {"soft_fail": True}):
        sensor = _sensor(deferrable=True, **flags)
        with pytest.raises(AirflowFailException, match="401"):
            sensor.resume_execution("execute_complete", {"event": permanent}, {})
    with pytest.raises(AirflowException) as info:
        _sensor(deferrable=True).resume_execution("execute_complete", {"event": transient}, {})
    assert not isinstance(info.value, AirflowFailException)
    # soft_fail still skips a transient error and a wait that ran out
    for event in (transient, {"status": "timeout", "message": "late"}):
        with pytest.raises(AirflowSkipException):
            _sensor(deferrable=True, soft_fail=True).resume_execution(
                "execute_complete", {"event": event}, {}
            )
