"""CredlyBadgeSensor on a day of 2,100 badge changes, over real HTTP against the emulator.

The awaited change is made to the oldest badge, which the regular search (newest first, 50 a page) lists
after every other change of the day: a check must read them all, in poke mode, deferred and in the trigger.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.sensors.badges import CredlyBadgeSensor
from airflow_provider_credly.testing.emulator import EmulatorState, RunningEmulator, run_emulator
from tests.conftest import connect_credly

DAY = datetime(2026, 11, 20, tzinfo=UTC)
SINCE = DAY + timedelta(hours=12)
BUSY = 2100  # changes before SINCE, all on DAY


class BusyDay:
    """An emulator whose clock the test sets; ``awaited`` is the id of the oldest badge."""

    def __init__(self) -> None:
        self.now = DAY
        self.state = EmulatorState(seed=5, badges=BUSY + 300, clock=lambda: self.now)
        store = self.state.store
        rows = list(store.order)  # (created_at, id) order
        self.awaited = store.ids[rows[0]]
        for i, r in enumerate(rows[1 : BUSY + 1]):
            self.now = DAY + timedelta(hours=1, seconds=10 * i)  # 01:00 to ~06:50, all before SINCE
            self.state.set_badge_state(store.ids[r], "rejected")
        self.emulator: RunningEmulator = run_emulator(self.state)

    def change_awaited(self) -> None:
        self.now = SINCE + timedelta(minutes=30)
        self.state.set_badge_state(self.awaited, "revoked")


@pytest.fixture
def day(monkeypatch: pytest.MonkeyPatch) -> Iterator[BusyDay]:
    busy = BusyDay()
    emu = busy.emulator
    connect_credly(monkeypatch, emu, backoff_max=0.05)
    yield busy
    emu.stop()


def _sensor(**kwargs: Any) -> CredlyBadgeSensor:
    return CredlyBadgeSensor(task_id="wait", poke_interval=0.1, timeout=60, **kwargs)


def _first_regular_pages(day: BusyDay, pages: int) -> set[str]:
    """Ids on the first ``pages`` pages of the regular search for the day (what a page-capped check saw)."""
    emu = day.emulator
    client = CredlyClient.create(emu.token, emu.org_id, base_url=emu.base_url)
    try:
        seen: set[str] = set()
        for number, page in enumerate(client.iter_badge_pages({"updated_at_min": DAY}), start=1):
            seen.update(str(b["id"]) for b in page.items)
            if number >= pages:
                break
        return seen
    finally:
        client.close()


def test_poke_finds_the_oldest_badge_behind_2100_changes(day: BusyDay) -> None:
    day.change_awaited()
    assert len(_first_regular_pages(day, 20)) == 1000
    assert day.awaited not in _first_regular_pages(day, 20)  # a 20-page check would have missed it

    result = _sensor(changed_since=SINCE).poke({})
    assert result.is_done is True
    assert result.xcom_value == {"count": 1, "ids": [day.awaited]}
    assert day.state.request_count("GET", "badges.high_volume") >= BUSY // 50  # read to the cursor's end


def test_poke_counts_every_change_of_the_day_exactly(day: BusyDay) -> None:
    day.change_awaited()
    result = _sensor(changed_since=DAY, min_count=BUSY + 1, max_results=3).poke({})
    assert result.is_done is True
    assert result.xcom_value["count"] == BUSY + 1
    assert result.xcom_value["ids"][0] == day.awaited  # cursor order: oldest first
    assert len(result.xcom_value["ids"]) == 3

    more = _sensor(changed_since=DAY, min_count=BUSY + 2).poke({})
    assert more.is_done is False
    assert more.xcom_value["count"] == BUSY + 1


def test_poke_before_the_change_is_not_done(day: BusyDay) -> None:
    result = _sensor(changed_since=SINCE, include_badges=True).poke({})
    assert result.is_done is False
    assert result.xcom_value == {"count": 0, "ids": [], "badges": []}


def test_deferrable_check_at_once_sees_the_oldest_change(day: BusyDay) -> None:
    day.change_awaited()
    result = _sensor(changed_since=SINCE, deferrable=True, include_badges=True).execute({})
    assert result["count"] == 1
    assert result["ids"] == [day.awaited]
    assert [b["state"] for b in result["badges"]] == ["revoked"]


def test_trigger_waits_for_the_oldest_change(day: BusyDay) -> None:
    sensor = _sensor(changed_since=SINCE, deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})  # nothing since SINCE yet: the wait goes to the trigger
    trigger = info.value.trigger
    checks_before = day.state.request_count("GET", "badges.high_volume")

    def change_after_a_trigger_check() -> None:
        deadline = time.monotonic() + 30
        while (
            day.state.request_count("GET", "badges.high_volume") < 2 * checks_before
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        day.change_awaited()

    changer = threading.Thread(target=change_after_a_trigger_check)
    changer.start()
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), timeout=60))
    changer.join()
    assert event.payload["status"] == "success"
    assert event.payload["count"] == 1
    assert event.payload["ids"] == [day.awaited]
    assert sensor.execute_complete({}, event.payload) == {"count": 1, "ids": [day.awaited]}
