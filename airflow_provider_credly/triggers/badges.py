"""CredlyBadgeTrigger: waits in the triggerer until badges matching a filter exist or change.

The check itself is :func:`match_badges`, plain synchronous code shared with :class:`CredlyBadgeSensor`'s
poke mode; the trigger runs it in a worker thread (``asyncio.to_thread``) so the triggerer's event loop
never blocks, and there is one HTTP client and one retry policy, not an async copy of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_credly.client.credly import BadgeFormat, CredlyClient
from airflow_provider_credly.client.errors import ApiError
from airflow_provider_credly.client.filters import BADGE_FILTERS, build_filter, parse_filter
from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.operators.failures import is_permanent

__all__ = ["CredlyBadgeTrigger", "badge_event", "badge_filter", "match_badges"]

# Credly does not say in which time zone its ``YYYY-MM-DD`` filters are read: a day earlier than the UTC
# date of ``changed_since`` covers every offset, and the exact ``updated_at`` comparison drops the rest.
_DAY_MARGIN = timedelta(days=1)


def badge_filter(filters: Mapping[str, Any] | str | None, changed_since: datetime | None) -> str | None:
    """The validated Credly filter of a wait: ``filters`` plus ``updated_at_min`` from ``changed_since``.

    ``updated_at_min`` is the day before ``changed_since`` (UTC), so no time zone reading of Credly's day
    filter can leave a change out; :func:`match_badges` then compares ``updated_at`` exactly.

    :raises ValueError: an unknown key, a bad value, or ``updated_at_min`` given twice.
    """
    merged: dict[str, Any] = dict(parse_filter(filters) if isinstance(filters, str) else (filters or {}))
    if changed_since is not None:
        if "updated_at_min" in merged:
            raise ValueError("set either changed_since or the updated_at_min filter, not both")
        merged["updated_at_min"] = _utc(changed_since) - _DAY_MARGIN
    return build_filter(merged, BADGE_FILTERS)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def match_badges(
    client: CredlyClient,
    filter_text: str | None,
    *,
    changed_since: datetime | None = None,
    min_count: int = 1,
    max_results: int = 100,
    include_badges: bool = False,
) -> dict[str, Any]:
    """Look for badges matching ``filter_text`` once; returns the XCom-ready result.

    Without ``changed_since`` the count is the regular search's ``total_count`` and only the pages holding
    the returned ids are read. With it, every badge of the filter (whose ``updated_at_min`` has day
    granularity) is read through the high-volume cursor, however many there are, and each badge's
    ``updated_at`` is compared exactly: the regular search caps page numbers and sorts by creation, so on a
    busy day the awaited change could sit beyond the pages a check reads.

    :return: ``{"done": bool, "count": int, "ids": [...], "badges": [...] (only with include_badges)}``.
    """
    if changed_since is None:
        count, found = _search_count(client, filter_text, max_results)
    else:
        count, found = _changes_since(client, filter_text, _utc(changed_since), max_results, include_badges)
    result: dict[str, Any] = {
        "done": count >= min_count,
        "count": count,
        "ids": [str(b.get("id")) for b in found],
    }
    if include_badges:
        result["badges"] = found
    return result


def _search_count(
    client: CredlyClient, filter_text: str | None, max_results: int
) -> tuple[int, list[dict[str, Any]]]:
    """The server's exact ``total_count`` and the first ``max_results`` badges of the regular search."""
    count = 0
    found: list[dict[str, Any]] = []
    for page in client.iter_badge_pages(filter_text):
        total = page.metadata.get("total_count") if isinstance(page.metadata, Mapping) else None
        count = int(total) if isinstance(total, int) else count + len(page.items)
        found.extend(page.items[: max(0, max_results - len(found))])
        if len(found) >= min(count, max_results):
            break
    return count, found


def _changes_since(
    client: CredlyClient, filter_text: str | None, since: datetime, max_results: int, include_badges: bool
) -> tuple[int, list[dict[str, Any]]]:
    """Every badge of ``filter_text`` updated at or after ``since``, read to the cursor's end."""
    count = 0
    found: list[dict[str, Any]] = []
    badge_format: BadgeFormat = (
        "default" if include_badges else "minimal"
    )  # minimal still carries id and updated_at
    for page in client.iter_high_volume_badge_pages(filter_text, badge_format=badge_format):
        for badge in page.items:
            if not _changed_since(badge, since):
                continue
            count += 1
            if len(found) < max_results:
                found.append(badge)
    return count, found


def _changed_since(badge: Mapping[str, Any], since: datetime) -> bool:
    try:
        updated = parse_timestamp(badge.get("updated_at"))
    except ValueError:
        return True  # unknown format: trust the server's day filter
    return updated is None or updated >= since


def badge_event(status: str, message: str, result: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The payload of every event the trigger fires: ``status`` (success, timeout, error), a message and
    the match result (count, ids, badges)."""
    out: dict[str, Any] = {"status": status, "message": message, "count": 0, "ids": []}
    if result:
        out.update({k: v for k, v in result.items() if k != "done"})
    return out


class CredlyBadgeTrigger(BaseTrigger):
    """Poll Credly until badges match, or until ``end_time``.

    :param credly_conn_id: the Credly connection (its token is read in the triggerer, never serialized).
    :param filter_text: the validated ``filter`` parameter (see :func:`badge_filter`).
    :param changed_since: ISO timestamp; only badges updated at or after it count.
    :param min_count: how many matching badges end the wait.
    :param max_results: how many ids (and badges) to return at most.
    :param include_badges: return the badge records too.
    :param poll_interval: seconds between checks.
    :param end_time: ISO timestamp (UTC) after which a ``timeout`` event fires.
    """

    def __init__(
        self,
        *,
        credly_conn_id: str,
        filter_text: str | None,
        changed_since: str | None = None,
        min_count: int = 1,
        max_results: int = 100,
        include_badges: bool = False,
        poll_interval: float = 60.0,
        end_time: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.credly_conn_id = credly_conn_id
        self.filter_text = filter_text
        self.changed_since = changed_since
        self.min_count = min_count
        self.max_results = max_results
        self.include_badges = include_badges
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and exactly the constructor's keyword arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "credly_conn_id": self.credly_conn_id,
                "filter_text": self.filter_text,
                "changed_since": self.changed_since,
                "min_count": self.min_count,
                "max_results": self.max_results,
                "include_badges": self.include_badges,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    def _check(self) -> dict[str, Any]:
        """One synchronous check (runs in a worker thread)."""
        from airflow_provider_credly.hooks.credly import CredlyHook

        # one hook per check: the sensor warns of a token close to expiry, not every poll of the trigger
        client = CredlyHook(credly_conn_id=self.credly_conn_id, warn_token_expiry=False).client
        try:
            return match_badges(
                client,
                self.filter_text,
                changed_since=parse_timestamp(self.changed_since),
                min_count=self.min_count,
                max_results=self.max_results,
                include_badges=self.include_badges,
            )
        finally:
            client.close()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check, sleep, repeat; fires one event (success, timeout or error) and stops."""
        deadline = parse_timestamp(self.end_time)
        while True:
            try:
                result = await asyncio.to_thread(self._check)
            except (ApiError, ValueError) as exc:
                event = badge_event("error", f"{type(exc).__name__}: {exc}")
                event["permanent"] = is_permanent(exc)  # a 401 or a bad filter: the sensor fails for good
                yield TriggerEvent(event)  # type: ignore[no-untyped-call]
                return
            if result["done"]:
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    badge_event("success", f"{result['count']} matching badge(s)", result)
                )
                return
            now = datetime.now(UTC)
            if deadline is not None and now >= deadline:
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    badge_event(
                        "timeout", f"only {result['count']} matching badge(s) by {self.end_time}", result
                    )
                )
                return
            wait = self.poll_interval
            if deadline is not None:
                wait = max(0.0, min(wait, (deadline - now).total_seconds()))
            self.log.debug(
                "%d of %d badge(s) so far; next check in %.0f s", result["count"], self.min_count, wait
            )
            await asyncio.sleep(wait)
