"""CredlyBadgeTrigger: exact serialization, and its async poll over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
from airflow_provider_credly.triggers.badges import CredlyBadgeTrigger, badge_event, badge_filter
from tests.conftest import connect_credly

KWARGS = {
    "credly_conn_id": "credly_test",
    "filter_text": "state::accepted|recipient_email::a@example.com",
    "changed_since": "2026-11-20T00:00:00+00:00",
    "min_count": 2,
    "max_results": 10,
    "include_badges": True,
    "poll_interval": 0.2,
    "end_time": "2026-11-30T00:00:00+00:00",
}


def test_serialize_round_trip_is_exact():
    trigger = CredlyBadgeTrigger(**KWARGS)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_credly.triggers.badges.CredlyBadgeTrigger"
    assert kwargs == KWARGS
    again = CredlyBadgeTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_serialized_kwargs_never_hold_the_token(emulator_conn):
    _, kwargs = CredlyBadgeTrigger(**{**KWARGS, "credly_conn_id": "credly_test"}).serialize()
    assert emulator_conn.token not in repr(kwargs)


def test_badge_filter_validates_before_waiting():
    since = datetime(2026, 11, 20, 5, tzinfo=UTC)
    # a day earlier than since's UTC date: no time zone reading of Credly's day filter can drop a change
    assert badge_filter({"state": "accepted"}, since) == "state::accepted|updated_at_min::2026-11-19"
    local = datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 2026-11-21 04:30 UTC
    assert badge_filter(None, local) == "updated_at_min::2026-11-20"
    with pytest.raises(ValueError, match="unknown filter"):
        badge_filter({"colour": "red"}, None)
    with pytest.raises(ValueError, match="state"):
        badge_filter({"state": "shiny"}, None)
    with pytest.raises(ValueError, match="not both"):
        badge_filter({"updated_at_min": "2026-01-01"}, since)


def test_badge_event_shape():
    event = badge_event("success", "2 found", {"done": True, "count": 2, "ids": ["a", "b"]})
    assert event == {"status": "success", "message": "2 found", "count": 2, "ids": ["a", "b"]}


@pytest.fixture
def emulator_conn(monkeypatch):
    state = EmulatorState(seed=3, badges=30)
    emu = run_emulator(state)
    connect_credly(monkeypatch, emu, "credly_test", backoff_max=0.05)
    yield emu
    emu.stop()


def _issue(state, email):
    return state.issue_badge(
        badge_template_id=state.templates[2].id,
        recipient_email=email,
        issued_to_first_name="Ada",
        issued_to_last_name="Lovelace",
        issued_at="2026-11-22 10:00:00 +0000",
    )


async def _collect(trigger, ticker_period=0.01):
    """Run the trigger to its first event while a ticker proves the event loop keeps running."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(ticker_period)

    task = asyncio.create_task(ticker())
    try:
        event = await asyncio.wait_for(trigger.run().__anext__(), timeout=20)
    finally:
        stop.set()
        await task
    return event.payload, ticks


def test_run_polls_until_a_badge_appears_without_blocking_the_loop(emulator_conn):
    emu = emulator_conn
    emu.set_faults(latency_ms=150)  # each check takes a while: the loop must keep ticking meanwhile
    email = "late.earner@example.com"

    def issue_after_two_checks():
        deadline = time.monotonic() + 15
        while emu.state.request_count("GET", "badges.list") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        _issue(emu.state, email)

    issuer = threading.Thread(target=issue_after_two_checks)
    issuer.start()
    trigger = CredlyBadgeTrigger(
        credly_conn_id="credly_test",
        filter_text=badge_filter({"recipient_email": email}, None),
        poll_interval=0.1,
        end_time=(datetime.now(UTC) + timedelta(seconds=30)).isoformat(),
    )
    payload, ticks = asyncio.run(_collect(trigger))
    issuer.join()
    assert payload["status"] == "success"
    assert payload["count"] == 1
    assert payload["ids"] == [b["id"] for b in emu.state.find_badges(recipient_email=email)]
    assert emu.state.request_count("GET", "badges.list") >= 2  # it kept polling until the badge came
    assert ticks >= 20  # ~3 checks x 150 ms of latency: the loop ran all along


def test_run_times_out_at_the_absolute_deadline(emulator_conn):
    trigger = CredlyBadgeTrigger(
        credly_conn_id="credly_test",
        filter_text=badge_filter({"recipient_email": "nobody@example.com"}, None),
        poll_interval=60,
        end_time=(datetime.now(UTC) + timedelta(seconds=0.3)).isoformat(),
    )
    started = time.monotonic()
    payload, _ = asyncio.run(_collect(trigger))
    assert payload["status"] == "timeout"
    assert payload["count"] == 0
    assert time.monotonic() - started < 5  # the 60 s poll interval was cut to the deadline


def test_run_reports_api_errors_as_an_error_event(emulator_conn, monkeypatch):
    connect_credly(
        monkeypatch,
        emulator_conn,
        "credly_test",
        token="wrong-token-123",
        max_retries=0,
        backoff_base=None,
        backoff_max=None,
    )
    trigger = CredlyBadgeTrigger(credly_conn_id="credly_test", filter_text=None, poll_interval=0.1)
    payload, _ = asyncio.run(_collect(trigger))
    assert payload["status"] == "error"
    assert "AuthenticationError" in payload["message"]
    assert "wrong-token-123" not in payload["message"]
    assert payload["permanent"] is True  # a retry of the sensor cannot fix a 401
    # the trigger's per-poll hook sent no token look-up of its own (the sensor warns itself)
    assert emulator_conn.state.request_count("GET", "authorization_tokens.list") == 0


def test_a_server_error_event_is_not_permanent(emulator_conn):
    emulator_conn.set_faults(error_rate=1.0, fail_paths="/badges")
    trigger = CredlyBadgeTrigger(credly_conn_id="credly_test", filter_text=None, poll_interval=0.1)
    payload, _ = asyncio.run(_collect(trigger))
    assert payload["status"] == "error" and "ServerError" in payload["message"]
    assert payload["permanent"] is False
