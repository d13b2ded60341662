"""CredlyEventTrigger: event-driven DAGs on the organization's Credly events (Airflow 3 ``AssetWatcher``).

The trigger polls ``GET /organizations/<org>/events`` and yields one :class:`TriggerEvent` per event it has
not delivered yet, so a DAG scheduled on ``Asset(..., watchers=[AssetWatcher(name=..., trigger=...)])`` runs
when badges are issued, accepted, revoked... without a schedule.

**Watermark.** Credly's events list has no filter or sort parameter, so "new" is decided here: the watermark
is the newest ``occurred_at`` delivered plus the ids of the events at exactly that instant (two events can
share a millisecond). An event is new when it occurred later, or at that instant with an unseen id.

**Delivery guarantee: at least once.** Each event is yielded once per trigger run. The watermark survives a
triggerer restart in the watched asset's state store (Airflow 3.3+, key ``state_key``); it is written one
poll late, i.e. it only ever covers events yielded a poll interval earlier, which the triggerer has long
stored as asset events. After a restart (or where no state store exists: the start point in the kwargs)
the events after the last stored watermark are delivered again, so downstream tasks must be idempotent
(key writes by event id). An event Credly lists only after a newer one was delivered (an older
``occurred_at`` appearing late) is not delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_credly.client.errors import ApiConnectionError, RateLimitError, ServerError
from airflow_provider_credly.client.times import parse_timestamp

if TYPE_CHECKING:
    from airflow_provider_credly.client.credly import CredlyClient

__all__ = ["CredlyEventTrigger", "EventWatermark", "event_payload", "read_new_events"]

# Failures a later poll can outlive; anything else (a wrong token, a missing organization) fails the trigger.
_TRANSIENT = (ApiConnectionError, RateLimitError, ServerError)
# The watermark of "every event is new": baseline of an organization that has no events yet.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventWatermark:
    """The newest ``occurred_at`` delivered and the ids of the events at exactly that instant.

    :param since: aware UTC datetime.
    :param seen_ids: ids of the events occurring at ``since`` already delivered.
    """

    since: datetime
    seen_ids: frozenset[str] = frozenset()

    def is_new(self, occurred: datetime, event_id: str) -> bool:
        """Whether an event at ``occurred`` with ``event_id`` lies beyond the watermark."""
        return occurred > self.since or (occurred == self.since and event_id not in self.seen_ids)

    def advance(self, occurred: datetime, event_id: str) -> EventWatermark:
        """The watermark after also delivering this event."""
        if occurred > self.since:
            return EventWatermark(occurred, frozenset({event_id}))
        if occurred == self.since:
            return EventWatermark(self.since, self.seen_ids | {event_id})
        return self

    def later(self, other: EventWatermark | None) -> EventWatermark:
        """The later of two watermarks (their seen ids joined at an equal instant)."""
        if other is None or other.since < self.since:
            return self
        if other.since > self.since:
            return other
        return EventWatermark(self.since, self.seen_ids | other.seen_ids)

    def to_json(self) -> dict[str, Any]:
        """JSON primitives, as stored in the asset state store."""
        return {"since": self.since.isoformat(), "seen_ids": sorted(self.seen_ids)}

    @classmethod
    def from_json(cls, value: Any) -> EventWatermark | None:
        """Inverse of :meth:`to_json`; ``None`` for anything else (an absent or foreign value)."""
        if not isinstance(value, Mapping):
            return None
        try:
            since = parse_timestamp(value.get("since"))
        except ValueError:
            return None
        ids = value.get("seen_ids") or []
        if since is None or not isinstance(ids, list):
            return None
        return cls(since, frozenset(str(i) for i in ids))


def _occurred(event: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_timestamp(event.get("occurred_at"))
    except ValueError:
        return None


class _ListingOrder:
    """What the events read so far show of the listing's order (Credly does not document it)."""

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.rose = self.fell = False

    def see(self, occurred: datetime) -> None:
        if self.last is not None:
            self.rose |= occurred > self.last
            self.fell |= occurred < self.last
        self.last = occurred

    def newest_first_below(self, since: datetime) -> bool:
        """Proven newest first (some fall, no rise) and the last event read is before ``since``."""
        return self.fell and not self.rose and self.last is not None and self.last < since


def read_new_events(
    client: CredlyClient, watermark: EventWatermark | None
) -> tuple[list[dict[str, Any]], EventWatermark, int]:
    """Read the organization's events once; the new ones oldest first, the next watermark, the unreadable.

    Without a watermark (a first start with no start point) nothing is new: the watermark becomes the
    newest event listed, so only later events are delivered. Every page is read, unless the listing turns
    out newest first (then reading stops at the first page wholly before the watermark).

    :return: ``(new events sorted by (occurred_at, id), watermark covering them, events without a readable
        occurred_at, which are skipped)``.
    """
    found: list[tuple[datetime, str, dict[str, Any]]] = []
    unreadable = 0
    order = _ListingOrder()
    for page in client.iter_event_pages():
        for event in page.items:
            occurred = _occurred(event)
            if occurred is None:
                unreadable += 1
                continue
            order.see(occurred)
            event_id = str(event.get("id"))
            if watermark is None or watermark.is_new(occurred, event_id):
                found.append((occurred, event_id, event))
        if watermark is not None and order.newest_first_below(watermark.since):
            break  # newest first and already before the watermark: later pages are older still
    found.sort(key=lambda item: (item[0], item[1]))
    if watermark is None:
        baseline = EventWatermark(_EPOCH)
        for occurred, event_id, _ in found:
            baseline = baseline.advance(occurred, event_id)
        return [], baseline, unreadable
    for occurred, event_id, _ in found:
        watermark = watermark.advance(occurred, event_id)
    return [event for _, _, event in found], watermark, unreadable


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def event_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The small payload of one TriggerEvent: ids, type, time and badge state (no personal data; the
    full event, badge included, is ``CredlyHook().client.get_event(event_id)``)."""
    badge = _mapping(event.get("badge"))
    template = _mapping(badge.get("badge_template"))
    return {
        "event_id": str(event.get("id")),
        "event_type": event.get("event_type"),
        "occurred_at": event.get("occurred_at"),
        "organization_id": event.get("organization_id"),
        "badge_id": badge.get("id"),
        "badge_state": badge.get("state"),
        "badge_template_id": template.get("id") or badge.get("badge_template_id"),
    }


def _event_types(value: str | Iterable[str] | None) -> list[str] | None:
    """The type filter as a sorted list (``None``: every type); ``ValueError`` on blank entries."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(t, str) and t.strip() for t in items):
        raise ValueError(f"event_types must be non-empty strings such as 'badge.created', got {value!r}")
    return sorted({t.strip() for t in items})


class CredlyEventTrigger(BaseEventTrigger):
    """Yield one TriggerEvent per new event of the Credly organization (for an ``AssetWatcher``).

    Delivery is at least once; see the module docstring for the watermark and how a triggerer restart
    is handled. Each event's payload is :func:`event_payload`; in the DAG run it is in
    ``triggering_asset_events[asset][i].extra["payload"]`` (several events can land in one run).

    :param credly_conn_id: the Credly connection (its token is read in the triggerer, never serialized).
    :param event_types: deliver only these types (``badge.created``, ``badge.state.changed``...); ``None``
        for all. Events of other types still advance the watermark.
    :param since: ISO timestamp start point: deliver events that occurred at or after it. ``None``: only
        events newer than the newest one listed when the trigger first runs.
    :param seen_ids: ids of the events at exactly ``since`` already delivered (to resume a watermark).
    :param poll_interval: seconds between two reads of the events list.
    :param state_key: key of the watermark in the watched asset's state store; ``None`` keeps it in memory
        only (a restart then starts from ``since`` again).
    """

    def __init__(
        self,
        *,
        credly_conn_id: str = "credly_default",
        event_types: Sequence[str] | str | None = None,
        since: str | None = None,
        seen_ids: Sequence[str] | None = None,
        poll_interval: float = 60.0,
        state_key: str | None = "credly_event_watermark",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.credly_conn_id = credly_conn_id
        self.event_types = _event_types(event_types)
        self.since = since
        self.seen_ids = sorted(set(seen_ids or []))
        self.poll_interval = float(poll_interval)
        self.state_key = state_key
        self._persist = True  # off when the state store cannot hold one watermark

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and exactly the constructor's keyword arguments (JSON primitives)."""
        return (
            "airflow_provider_credly.triggers.events.CredlyEventTrigger",
            {
                "credly_conn_id": self.credly_conn_id,
                "event_types": self.event_types,
                "since": self.since,
                "seen_ids": self.seen_ids,
                "poll_interval": self.poll_interval,
                "state_key": self.state_key,
            },
        )

    def start_watermark(self) -> EventWatermark | None:
        """The watermark of the kwargs (``None``: baseline at the first read)."""
        since = parse_timestamp(self.since)
        if since is None:
            return None
        # events *at* ``since`` are wanted: start just below it unless their ids were delivered already
        return EventWatermark(since, frozenset(self.seen_ids)) if self.seen_ids else _just_before(since)

    def _poll(self, watermark: EventWatermark | None) -> tuple[list[dict[str, Any]], EventWatermark, int]:
        """One read of the events (runs in a worker thread: the sync client blocks)."""
        from airflow_provider_credly.hooks.credly import CredlyHook

        # one hook per poll: a watcher living for months must not look its token up at every poll
        client = CredlyHook(credly_conn_id=self.credly_conn_id, warn_token_expiry=False).client
        try:
            return read_new_events(client, watermark)
        finally:
            client.close()

    def _wanted(self, event: Mapping[str, Any]) -> bool:
        return self.event_types is None or event.get("event_type") in self.event_types

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; one TriggerEvent per new event, oldest first."""
        stored = await self._load_watermark()
        start = self.start_watermark()
        watermark = stored.later(start) if stored else start
        while True:
            try:
                events, next_mark, unreadable = await asyncio.to_thread(self._poll, watermark)
            except _TRANSIENT as exc:
                # a watcher lives for months: an outage outlasting the client's retries is not its end
                self.log.warning(
                    "Reading the Credly events failed (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    self.poll_interval,
                )
                await asyncio.sleep(self.poll_interval)
                continue
            if unreadable:
                self.log.warning("Skipped %d Credly event(s) without a readable occurred_at", unreadable)
            delivered = 0
            for event in events:
                if self._wanted(event):
                    delivered += 1
                    yield TriggerEvent(event_payload(event))  # type: ignore[no-untyped-call]
            if not events and next_mark != stored:
                # nothing yielded (e.g. the baseline of a first start): storing it at once loses nothing
                await self._store_watermark(next_mark)
                stored = next_mark
            self.log.debug(
                "%d new event(s), %d delivered; next read in %.0f s",
                len(events),
                delivered,
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)
            # one poll late: what was yielded before the sleep has been stored as asset events by now
            if next_mark != stored:
                await self._store_watermark(next_mark)
                stored = next_mark
            watermark = next_mark

    async def _load_watermark(self) -> EventWatermark | None:
        """The watermark kept in the watched asset's state store, if any."""
        stores = self._state_store()
        if stores is None:
            return None
        try:
            value = await _store_call(stores, "get", self.state_key)
        except ValueError:  # several watched assets: no single state to read
            self.log.warning("The trigger watches several assets: its watermark is kept in memory only")
            self._persist = False
            return None
        return EventWatermark.from_json(value)

    async def _store_watermark(self, watermark: EventWatermark) -> None:
        stores = self._state_store()
        if stores is not None:
            await _store_call(stores, "set", self.state_key, watermark.to_json())

    def _state_store(self) -> Any:
        """The watched asset's state store (injected by Airflow 3.3+'s triggerer), else ``None``."""
        if self.state_key is None or not self._persist:
            return None
        return getattr(self, "asset_state_store", None)


async def _store_call(stores: Any, name: str, *args: Any) -> Any:
    """``stores.a<name>(*args)``; on Airflow 3.3.0 and 3.3.1, whose asset state stores have only the
    synchronous ``get``/``set``, the synchronous call in a worker thread (the triggerer bridges it to its
    event loop; called on the loop itself it would fail the trigger at every start)."""
    method = getattr(stores, f"a{name}", None)
    if method is not None:
        return await method(*args)
    return await asyncio.to_thread(getattr(stores, name), *args)


def _just_before(since: datetime) -> EventWatermark:
    """A watermark below ``since`` by the smallest step, so events at ``since`` itself are new."""
    return EventWatermark(since - timedelta(microseconds=1))
