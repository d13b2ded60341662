"""CredlyBadgeTrigger: waits in the triggerer until badges matching a filter exist or change.

The check itself is :func:`match_badges`, plain synchronous code shared with :class:`CredlyBadgeSensor`'s
poke mode; the trigger runs it in a worker thread (``asyncio.to_thread``) so the triggerer's event loop
never blocks, and there is one HTTP client and one retry policy, not an async copy of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.errors import ApiError
from airflow_provider_credly.client.filters import BADGE_FILTERS, build_filter, parse_filter
from airflow_provider_credly.warehouse.schema import parse_timestamp

__all__ = ["CredlyBadgeTrigger", "badge_event", "badge_filter", "match_badges"]

MAX_PAGES = 20


def badge_filter(filters: Mapping[str, Any] | str | None, changed_since: datetime | None) -> str | None:
    """The validated Credly filter of a wait: ``filters`` plus ``updated_at_min`` from ``changed_since``.

    :raises ValueError: an unknown key, a bad value, or ``updated_at_min`` given twice.
    """
    merged: dict[str, Any] = dict(parse_filter(filters) if isinstance(filters, str) else (filters or {}))
    if changed_since is not None:
        if "updated_at_min" in merged:
            raise ValueError("set either changed_since or the updated_at_min filter, not both")
        merged["updated_at_min"] = changed_since
    return build_filter(merged, BADGE_FILTERS)


def match_badges(
    client: CredlyClient,
    filter_text: str | None,
    *,
    changed_since: datetime | None = None,
    min_count: int = 1,
    max_results: int = 100,
    include_badges: bool = False,
    max_pages: int = MAX_PAGES,
) -> dict[str, Any]:
    """Look for badges matching ``filter_text`` once; returns the XCom-ready result.

    Credly's date filters have day granularity, so with ``changed_since`` each badge's ``updated_at`` is
    also compared exactly (up to ``max_pages`` pages of 50 are read). Without it the count is the server's
    ``total_count``.

    :return: ``{"done": bool, "count": int, "ids": [...], "badges": [...] (only with include_badges)}``.
    """
    count = 0
    ids: list[str] = []
    badges: list[dict[str, Any]] = []
    for number, page in enumerate(client.iter_badge_pages(filter_text), start=1):
        matched = page.items
        if changed_since is not None:
            matched = [b for b in page.items if _changed_since(b, changed_since)]
            count += len(matched)
        else:
            total = page.metadata.get("total_count") if isinstance(page.metadata, Mapping) else None
            count = int(total) if isinstance(total, int) else count + len(matched)
        for badge in matched:
            if len(ids) < max_results:
                ids.append(str(badge.get("id")))
                if include_badges:
                    badges.append(badge)
        if number >= max_pages:
            break
        if changed_since is None and len(ids) >= min(count, max_results):
            break  # the server's count is exact: no need to read further pages
    result: dict[str, Any] = {"done": count >= min_count, "count": count, "ids": ids}
    if include_badges:
        result["badges"] = badges
    return result


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

        client = CredlyHook(credly_conn_id=self.credly_conn_id).client
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
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    badge_event("error", f"{type(exc).__name__}: {exc}")
                )
                return
            if result["done"]:
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    badge_event("success", f"{result['count']} matching badge(s)", result)
                )
                return
            now = datetime.now(timezone.utc)
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
