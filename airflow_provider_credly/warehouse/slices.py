"""Split a badge search into created_at slices of about equal badge counts, for parallel cursors.

Credly's high-volume cursor is forward-only: one cursor costs (pages x round trip) whatever the writer does.
Slices of the ``created_at`` range are independent cursors, so N of them run concurrently. The plan comes from
``metadata.total_count`` of the regular badge search (one cheap request per probe): the day range is halved
recursively until every piece is small enough, then adjacent pieces are merged into slices of at most the
target count. A single day is never split (the filters have day granularity), so one huge day is one slice.

:func:`plan_slices` is the pure algorithm (any counting function); :func:`plan_badge_slices` and
:func:`plan_badge_partitions` probe a :class:`~airflow_provider_credly.client.credly.CredlyClient`.
No Airflow import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.filters import parse_filter
from airflow_provider_credly.client.times import format_date

__all__ = [
    "Slice",
    "SlicePlan",
    "badge_counter",
    "plan_badge_partitions",
    "plan_badge_slices",
    "plan_slices",
    "saved_slices",
    "sliced_fingerprint",
]

#: pieces are halved down to ``target / _FINENESS`` badges before merging: slices end within
#: ``(1 - 1/_FINENESS) * target .. target`` unless one day is bigger than that
_FINENESS = 4
_PLAN_MARK = "\nslices="

#: counts the badges created on days ``lo..hi`` (inclusive ISO dates)
DayCounter = Callable[[date, date], int]


@dataclass(frozen=True)
class Slice:
    """One created_at slice of a badge search.

    :ivar index: position in the plan (also the slice checkpoint's suffix).
    :ivar since: ``created_at_min`` (``YYYY-MM-DD``), ``None`` when open below (the first slice).
    :ivar until: ``created_at_max`` (``YYYY-MM-DD``, inclusive), ``None`` when open above (the last slice:
        badges created during the load land there).
    :ivar count: badges counted at planning time (an estimate: the search goes on changing).
    """

    index: int
    since: str | None
    until: str | None
    count: int = 0

    def filters(self, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``base`` with this slice's created_at bounds (an open end keeps ``base``'s bound, if any)."""
        out = dict(base or {})
        for key, value in (("created_at_min", self.since), ("created_at_max", self.until)):
            if value is not None:
                out[key] = value
        return out

    def as_partition(self) -> dict[str, str | None]:
        """``{"since": ..., "until": ...}``: keyword arguments of ``CredlyBadgesToSqlOperator``."""
        return {"since": self.since, "until": self.until}


@dataclass(frozen=True)
class SlicePlan:
    """The slices and what planning cost.

    :ivar slices: contiguous, disjoint, covering the whole range (open at both ends unless bounded).
    :ivar probes: count requests made (the two range probes included).
    :ivar total: badges counted over the whole range.
    """

    slices: tuple[Slice, ...]
    probes: int
    total: int

    def bounds(self) -> list[list[str | None]]:
        """``[[since, until], ...]`` (JSON-friendly; part of the load's fingerprint)."""
        return [[s.since, s.until] for s in self.slices]


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def plan_slices(
    count: DayCounter,
    first: date,
    last: date,
    total: int,
    *,
    target: int,
    since: str | None = None,
    until: str | None = None,
    workers: int = 1,
) -> SlicePlan:
    """Slices of ``first..last`` holding at most ``target`` badges each (a single day may hold more).

    Deterministic: the same counts give the same plan. The first slice starts at ``since`` and the last
    ends at ``until`` (``None``: open), so badges outside ``first..last`` (created during the load) are
    still covered.

    :param count: badges created on days ``lo..hi``; called once per halving.
    :param first: the first day with a badge; :param last: the last one.
    :param total: badges in ``first..last`` (known from the range probe).
    :param target: the largest slice wanted (>= 1).
    :param workers: probes made at once (those of one halving level are independent).
    """
    if target < 1:
        raise ValueError(f"target must be at least 1, got {target}")
    piece_target = max(1, target // _FINENESS)
    pieces: list[tuple[date, date, int]] = []
    probes = 0
    # halve level by level: the probes of one level are independent, so they run concurrently
    level = [(first, last, total)] if total > 0 and first <= last else []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while level:
            split = [p for p in level if p[2] > piece_target and p[0] < p[1]]  # one day is never split
            pieces.extend(p for p in level if not (p[2] > piece_target and p[0] < p[1]))
            mids = [lo + timedelta(days=(hi - lo).days // 2) for lo, hi, _ in split]
            lefts = list(pool.map(count, [lo for lo, _, _ in split], mids))
            probes += len(split)
            level = []
            for (lo, hi, n), mid, left in zip(split, mids, lefts, strict=True):
                level += [(lo, mid, left), (mid + timedelta(days=1), hi, max(0, n - left))]
    pieces.sort()
    merged: list[list[Any]] = []  # [lo, hi, n]: adjacent pieces while they fit in target
    for lo, hi, n in pieces:
        if merged and merged[-1][2] + n <= target:
            merged[-1][1], merged[-1][2] = hi, merged[-1][2] + n
        else:
            merged.append([lo, hi, n])
    if not merged:
        return SlicePlan((Slice(0, since, until, 0),), probes, total)
    slices = []
    for i, (lo, hi, n) in enumerate(merged):
        lo_text = since if i == 0 else lo.isoformat()
        hi_text = until if i == len(merged) - 1 else hi.isoformat()
        slices.append(Slice(i, lo_text, hi_text, n))
    return SlicePlan(tuple(slices), probes, total)


def badge_counter(client: CredlyClient, filters: Mapping[str, Any]) -> Callable[..., tuple[int, Any]]:
    """``probe(lo=None, hi=None, sort=None)`` -> ``(metadata.total_count, first record or None)`` of the
    regular badge search with ``filters`` and ``created_at_min/max = lo/hi``: one request per call.

    :raises ValueError: the response carries no integer ``total_count``.
    """

    def probe(lo: date | None = None, hi: date | None = None, sort: str | None = None) -> tuple[int, Any]:
        flt = dict(filters)
        if lo is not None:
            flt["created_at_min"] = lo.isoformat()
        if hi is not None:
            flt["created_at_max"] = hi.isoformat()
        pages = client.iter_badge_pages(flt, sort)
        try:
            page = next(pages)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:  # the generator's connection goes back to the pool now
                close()
        total = page.metadata.get("total_count")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ValueError("the badge search answered without an integer metadata.total_count")
        return total, (page.items[0] if page.items else None)

    return probe


def _filters(filters: Mapping[str, Any] | str | None) -> dict[str, Any]:
    return dict(parse_filter(filters) if isinstance(filters, str) else (filters or {}))


def plan_badge_slices(
    client: CredlyClient,
    filters: Mapping[str, Any] | str | None = None,
    *,
    slices: int,
    min_badges: int = 1_000,
    workers: int = 1,
) -> SlicePlan:
    """Plan about ``slices`` created_at slices of the badges matching ``filters``.

    The range is ``filters``' ``created_at_min..created_at_max``, narrowed to the first and last days with
    a matching badge (two probes sorted by ``created_at``); the first and last slices keep ``filters``'
    bounds (open when unset). Slices hold about ``max(min_badges, total / slices)`` badges.

    :param client: the Credly client (its organization's badges).
    :param filters: the search's badge filters (dict or ``key::value|...`` text).
    :param slices: the number of slices wanted (fewer when there are fewer badges).
    :param min_badges: no slice is planned smaller than this (a slice costs a cursor and a probe).
    :param workers: count requests made at once.
    """
    base = _filters(filters)
    since = format_date(base["created_at_min"], key="created_at_min") if base.get("created_at_min") else None
    until = format_date(base["created_at_max"], key="created_at_max") if base.get("created_at_max") else None
    probe = badge_counter(client, base)
    total, oldest = probe(sort="created_at")
    if total == 0 or oldest is None or not oldest.get("created_at"):
        return SlicePlan((Slice(0, since, until, total),), 1, total)
    _, newest = probe(sort="-created_at")
    first = _day(str(oldest["created_at"]))
    last = _day(str((newest or oldest).get("created_at") or oldest["created_at"]))
    target = max(1, int(min_badges), math.ceil(total / max(1, int(slices))))

    def count(lo: date, hi: date) -> int:
        return probe(lo, hi)[0]

    plan = plan_slices(count, first, last, total, target=target, since=since, until=until, workers=workers)
    return SlicePlan(plan.slices, plan.probes + 2, total)


def plan_badge_partitions(
    client: CredlyClient,
    filters: Mapping[str, Any] | str | None = None,
    *,
    since: Any = None,
    until: Any = None,
    partitions: int = 8,
    min_badges: int = 1,
) -> list[dict[str, str | None]]:
    """Balanced ``[{"since": ..., "until": ...}, ...]`` partitions of a badge backfill, for
    ``CredlyBadgesToSqlOperator.partial(...).expand_kwargs(...)``.

    Each partition holds about the same number of badges (see :func:`plan_badge_slices`); together they
    cover ``since..until`` exactly once (the first and last are open when ``since``/``until`` are unset, so
    badges created during the backfill land in the last one).

    :param since: the first day (``created_at_min``), default the organization's first badge.
    :param until: the last day (``created_at_max``, inclusive), default open.
    :param partitions: how many partitions wanted (fewer when a day holds more than its share).
    """
    base = _filters(filters)
    if since not in (None, ""):
        base["created_at_min"] = format_date(since, key="since")
    if until not in (None, ""):
        base["created_at_max"] = format_date(until, key="until")
    plan = plan_badge_slices(client, base, slices=partitions, min_badges=min_badges)
    return [s.as_partition() for s in plan.slices]


def sliced_fingerprint(fingerprint: str, slices: Sequence[Slice]) -> str:
    """The fingerprint of a sliced load: the request's plus the plan (a new plan is a new load)."""
    return fingerprint + _PLAN_MARK + json.dumps([[s.since, s.until] for s in slices])


def saved_slices(saved_fingerprint: str | None, fingerprint: str) -> list[Slice] | None:
    """The plan stored in ``saved_fingerprint`` when it is a sliced load of the same request (``fingerprint``),
    so a retry continues the same slices instead of planning again; ``None`` otherwise."""
    if not saved_fingerprint:
        return None
    request, mark, plan = saved_fingerprint.partition(_PLAN_MARK)
    if not mark or request != fingerprint:
        return None
    try:
        bounds = json.loads(plan)
        return [Slice(i, lo, hi) for i, (lo, hi) in enumerate(bounds)]
    except (ValueError, TypeError):
        return None
