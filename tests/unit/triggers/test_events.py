"""CredlyEventTrigger: exact serialization, the watermark, and its poll over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
from airflow_provider_credly.triggers.events import (
    CredlyEventTrigger,
    EventWatermark,
    event_payload,
    read_new_events,
)
from tests.conftest import connect_credly

KWARGS = {
    "credly_conn_id": "credly_test",
    "event_types": ["badge.created", "badge.state.changed"],
    "since": "2026-11-20T00:00:00+00:00",
    "seen_ids": ["a", "b"],
    "poll_interval": 0.5,
    "state_key": "wm",
}


class FrozenClock:
    """The emulator's clock, moved by the test: events can share one instant."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 12, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def tick(self, ms: int = 1) -> None:
        with self.lock:
            self.now += timedelta(milliseconds=ms)


class MemoryStateStore:
    """Stands in for the asset state store the triggerer injects (same ``aget``/``aset`` calls)."""

    def __init__(self, value: Any = None) -> None:
        self.values: dict[str, Any] = {} if value is None else {"wm": value}
        self.writes: list[Any] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.writes.append(value)


class SyncStateStore:
    """The asset state store of Airflow 3.3.0 and 3.3.1: synchronous ``get``/``set`` only, which must not run
    on the triggerer's event loop (checked here: the real one blocks the loop it needs)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[Any] = []

    def _off_the_loop(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise AssertionError("a synchronous state store call on the event loop")

    def get(self, key: str, default: Any = None) -> Any:
        self._off_the_loop()
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._off_the_loop()
        self.values[key] = value
        self.writes.append(value)


@pytest.fixture(params=[MemoryStateStore, SyncStateStore], ids=["async-store", "sync-store-3.3.0"])
def state_store(request):
    return request.param()


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def emu(monkeypatch, clock):
    emulator = run_emulator(EmulatorState(seed=5, badges=20, clock=clock))
    connect_credly(monkeypatch, emulator, "credly_test", backoff_max=0.05)
    yield emulator
    emulator.stop()


def _issue(state: EmulatorState, n: int) -> dict[str, Any]:
    return state.issue_badge(
        badge_template_id=state.templates[1].id,
        recipient_email=f"evtrig-{n}@example.org",
        issued_to_first_name="Ada",
        issued_to_last_name=f"Lovelace{n}",
        issued_at="2026-11-20 10:00:00 +0000",
    )


def _client():
    return CredlyHook(credly_conn_id="credly_test").client


async def _take(trigger: CredlyEventTrigger, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """The payloads of the trigger's first ``count`` events (then the generator is closed)."""
    out: list[dict[str, Any]] = []
    gen = trigger.run()
    try:
        while len(out) < count:
            event = await asyncio.wait_for(gen.__anext__(), timeout=timeout)
            out.append(event.payload)
    finally:
        await gen.aclose()
    return out


# ------------------------------------------------------------------------------------------ serialization


def test_serialize_round_trip_is_exact():
    path, kwargs = CredlyEventTrigger(**KWARGS).serialize()
    assert path == "airflow_provider_credly.triggers.events.CredlyEventTrigger"
    assert kwargs == KWARGS
    assert CredlyEventTrigger(**kwargs).serialize() == (path, kwargs)


def test_defaults_serialize_to_json_primitives():
    path, kwargs = CredlyEventTrigger().serialize()
    assert kwargs == {
        "credly_conn_id": "credly_default",
        "event_types": None,
        "since": None,
        "seen_ids": [],
        "poll_interval": 60.0,
        "state_key": "credly_event_watermark",
    }
    # a single type is normalised to the list it serializes as (one trigger hash per configuration)
    assert CredlyEventTrigger(event_types="badge.created").serialize()[1]["event_types"] == ["badge.created"]


def test_serialized_kwargs_never_hold_the_token(emu):
    _, kwargs = CredlyEventTrigger(credly_conn_id="credly_test").serialize()
    assert emu.token not in repr(kwargs)


@pytest.mark.parametrize("bad", ["", [], ["badge.created", " "], [None]])
def test_event_types_are_validated(bad):
    with pytest.raises(ValueError, match="event_types"):
        CredlyEventTrigger(event_types=bad)


# ------------------------------------------------------------------------------------------ watermark


def test_watermark_json_round_trip_and_foreign_values():
    mark = EventWatermark(datetime(2026, 11, 20, 12, tzinfo=UTC), frozenset({"b", "a"}))
    assert mark.to_json() == {"since": "2026-11-20T12:00:00+00:00", "seen_ids": ["a", "b"]}
    assert EventWatermark.from_json(mark.to_json()) == mark
    for foreign in (
        None,
        "x",
        {"since": "not a time"},
        {"since": None},
        {"since": "2026-01-01", "seen_ids": 3},
    ):
        assert EventWatermark.from_json(foreign) is None


def test_watermark_later_joins_ids_at_one_instant():
    t = datetime(2026, 11, 20, tzinfo=UTC)
    a, b = EventWatermark(t, frozenset({"a"})), EventWatermark(t, frozenset({"b"}))
    assert a.later(b) == EventWatermark(t, frozenset({"a", "b"}))
    newer = EventWatermark(t + timedelta(seconds=1))
    assert a.later(newer) == newer and newer.later(a) == newer and a.later(None) == a


def test_first_read_without_start_point_delivers_nothing_and_baselines(emu):
    _issue(emu.state, 1)
    clock_at = emu.state.events[-1]
    with closing(_client()) as client:
        events, mark, unreadable = read_new_events(client, None)
    assert events == [] and unreadable == 0
    assert mark.seen_ids == {clock_at.id}
    assert mark.since == datetime.fromtimestamp(clock_at.occurred_ms / 1000, UTC)


def test_baseline_of_an_empty_organization_makes_every_event_new(emu, clock):
    with closing(_client()) as client:
        events, mark, _ = read_new_events(client, None)
        assert events == []
        clock.tick()
        badge = _issue(emu.state, 1)
        events, _, _ = read_new_events(client, mark)
    assert [e["badge"]["id"] for e in events] == [badge["id"]]


def test_events_at_the_watermark_instant_are_delivered_once(emu, clock):
    first = _issue(emu.state, 1)
    with closing(_client()) as client:
        start = EventWatermark(datetime(2026, 11, 20, tzinfo=UTC))
        events, mark, _ = read_new_events(client, start)
        assert [e["badge"]["id"] for e in events] == [first["id"]]
        # same millisecond as the delivered one: new by its id, the first is not delivered again
        second = _issue(emu.state, 2)
        events, mark2, _ = read_new_events(client, mark)
        assert [e["badge"]["id"] for e in events] == [second["id"]]
        assert mark2.since == mark.since and len(mark2.seen_ids) == 2
        events, mark3, _ = read_new_events(client, mark2)
    assert events == [] and mark3 == mark2


def test_every_page_is_read_and_new_events_come_oldest_first(emu, clock):
    for n in range(60):  # more than one page of 50
        clock.tick()
        _issue(emu.state, n)
    with closing(_client()) as client:
        events, mark, _ = read_new_events(client, EventWatermark(datetime(2026, 1, 1, tzinfo=UTC)))
    assert len(events) == 60
    assert [e["id"] for e in events] == [ev.id for ev in emu.state.events]
    assert emu.state.request_count("GET", "events.list") == 2
    assert mark.seen_ids == {emu.state.events[-1].id}


def test_event_payload_is_small_and_has_no_personal_data(emu):
    badge = _issue(emu.state, 7)
    with closing(_client()) as client:
        (event,), _, _ = read_new_events(client, EventWatermark(datetime(2026, 1, 1, tzinfo=UTC)))
    payload = event_payload(event)
    assert payload == {
        "event_id": emu.state.events[-1].id,
        "event_type": "badge.created",
        "occurred_at": event["occurred_at"],
        "organization_id": emu.org_id,
        "badge_id": badge["id"],
        "badge_state": badge["state"],
        "badge_template_id": emu.state.templates[1].id,
    }
    assert "evtrig-7@example.org" not in repr(payload)


class _FakeClient:
    """Pages of events in a given order (Credly documents none), counting the pages read."""

    def __init__(self, stamps: list[list[int]]) -> None:
        self.pages = [
            [
                {"id": f"e{s}", "event_type": "badge.created", "occurred_at": f"2026-11-20T12:00:{s:02d}Z"}
                for s in page
            ]
            for page in stamps
        ]
        self.read = 0

    def iter_event_pages(self):
        for items in self.pages:
            self.read += 1
            yield Page(items, f"fake:{self.read}", None, {})


def test_newest_first_listing_stops_at_the_first_page_before_the_watermark():
    client = _FakeClient([[50, 40], [30, 20], [10, 5]])
    mark = EventWatermark(datetime(2026, 11, 20, 12, 0, 35, tzinfo=UTC))
    events, _, _ = read_new_events(client, mark)  # type: ignore[arg-type]
    assert [e["id"] for e in events] == ["e40", "e50"]
    assert client.read == 2


def test_unproven_order_reads_every_page():
    # equal stamps prove no order; oldest first can hold newer events on later pages
    client = _FakeClient([[10, 10], [20, 50]])
    events, _, _ = read_new_events(client, EventWatermark(datetime(2026, 11, 20, 12, 0, 15, tzinfo=UTC)))  # type: ignore[arg-type]
    assert [e["id"] for e in events] == ["e20", "e50"] and client.read == 2


def test_events_without_a_readable_time_are_counted_and_skipped():
    client = _FakeClient([[10]])
    client.pages[0].append({"id": "bad", "occurred_at": "yesterday"})
    events, _, unreadable = read_new_events(client, EventWatermark(datetime(2026, 1, 1, tzinfo=UTC)))  # type: ignore[arg-type]
    assert [e["id"] for e in events] == ["e10"] and unreadable == 1


# ------------------------------------------------------------------------------------------ run()


def test_run_yields_one_event_per_new_event_of_the_wanted_types(emu, clock):
    old = _issue(emu.state, 0)  # before the trigger starts: not delivered (no start point)
    emu.state.set_badge_state(old["id"], "accepted")

    def act():
        # after the trigger's baseline read: a badge.created (filtered out), then a badge.state.changed
        while emu.state.request_count("GET", "events.list") < 1:
            threading.Event().wait(0.01)
        clock.tick()
        new = _issue(emu.state, 1)
        clock.tick()
        emu.state.set_badge_state(new["id"], "accepted")

    actor = threading.Thread(target=act)
    actor.start()
    trigger = CredlyEventTrigger(
        credly_conn_id="credly_test", event_types=["badge.state.changed"], poll_interval=0.05, state_key=None
    )
    (payload,) = asyncio.run(_take(trigger, 1))
    actor.join()
    accepted = emu.state.events[-1]
    assert payload["event_id"] == accepted.id
    assert payload["event_type"] == "badge.state.changed" and payload["badge_state"] == "accepted"


def test_run_keeps_its_watermark_in_the_state_store_and_resumes_from_it(emu, clock, state_store):
    store = state_store
    first, second = _issue(emu.state, 1), None
    trigger = CredlyEventTrigger(
        credly_conn_id="credly_test", since="2026-11-20T00:00:00Z", poll_interval=0.05
    )
    trigger.asset_state_store = store  # type: ignore[assignment]

    async def scenario() -> list[dict[str, Any]]:
        nonlocal second
        gen = trigger.run()
        got = [(await asyncio.wait_for(gen.__anext__(), 20)).payload]
        assert store.writes == []  # nothing stored while the event is fresh (one poll late)
        clock.tick()
        second = _issue(emu.state, 2)
        got.append((await asyncio.wait_for(gen.__anext__(), 20)).payload)
        await gen.aclose()
        return got

    got = asyncio.run(scenario())
    assert [p["badge_id"] for p in got] == [first["id"], second["id"]]
    # the stored watermark covers the first event (yielded a poll earlier), not yet the second
    stored = EventWatermark.from_json(store.values["credly_event_watermark"])
    assert stored is not None and stored.seen_ids == {emu.state.events[0].id}

    # a restart: same kwargs, the stored watermark wins over ``since``; the second is delivered again
    again = CredlyEventTrigger(credly_conn_id="credly_test", since="2026-11-20T00:00:00Z", poll_interval=0.05)
    again.asset_state_store = store  # type: ignore[assignment]
    (redelivered,) = asyncio.run(_take(again, 1))
    assert redelivered["badge_id"] == second["id"]


def test_run_stores_a_baseline_at_once(emu, state_store):
    _issue(emu.state, 1)
    store = state_store
    trigger = CredlyEventTrigger(credly_conn_id="credly_test", poll_interval=0.05)
    trigger.asset_state_store = store  # type: ignore[assignment]

    async def until_stored() -> None:
        task = asyncio.ensure_future(_take(trigger, 1))
        while not store.writes:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(until_stored(), 20))
    assert EventWatermark.from_json(store.writes[0]).seen_ids == {emu.state.events[0].id}


def test_run_outlives_server_errors(emu, monkeypatch):
    # no client retries: each 5xx reaches the trigger, which tries again at its next poll
    connect_credly(monkeypatch, emu, "credly_test", max_retries=0, backoff_base=None, backoff_max=None)
    emu.set_faults(error_rate=1.0, fail_paths="/events", max_faults=3)
    _issue(emu.state, 1)
    trigger = CredlyEventTrigger(
        credly_conn_id="credly_test", since="2026-11-20T00:00:00Z", poll_interval=0.05, state_key=None
    )
    (payload,) = asyncio.run(_take(trigger, 1))
    assert payload["badge_id"] == emu.state.events[0].payload["badge"]["id"]
    assert emu.state.request_count("GET", "events.list") == 4  # three 500s, then the answer
