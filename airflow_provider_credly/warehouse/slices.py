"""Split a badge search into created_at slices of about equal badge counts, for parallel cursors.

Credly's high-volume cursor is forward-only: one cursor costs (pages x round trip) whatever the writer does.
Slices of the ``created_at`` range are independent cursors, so N of them run concurrently. The plan comes from
``metadata.total_count`` of the regular badge search (one cheap request per probe): each boundary between two
slices is the day where the count of badges up to it reaches ``j / slices`` of the total, found by
interpolating between the counts already known (bisection when that stalls), all boundaries' probes of one
round at once. A boundary is final once a probed day is within a tolerance of its target, so the slices can be
handed out (``on_slice``) and fetched while the later ones are still probed. A single day is never split (the
filters have day granularity), so one huge day is one slice.

:func:`plan_slices` is the pure algorithm (any counting function); :func:`plan_badge_slices` and
:func:`plan_badge_partitions` probe a :class:`~airflow_provider_credly.client.credly.CredlyClient`;
:func:`badge_slice_source` is the page source of a sliced badge load (planner and cursors on one limiter).
No Airflow import.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from airflow_provider_credly.client.concurrency import AdaptiveLimiter, RequestRate, paced
from airflow_provider_credly.client.credly import BadgeFormat, CredlyClient
from airflow_provider_credly.client.filters import parse_filter
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.client.times import format_date

__all__ = [
    "MIN_SLICE_PAGES",
    "SLICES_PER_CURSOR",
    "Slice",
    "SlicePlan",
    "SliceSink",
    "SlicedPages",
    "badge_counter",
    "badge_slice_source",
    "plan_badge_partitions",
    "plan_badge_slices",
    "plan_slices",
    "planning_fingerprint",
    "saved_slices",
    "sliced_fingerprint",
]

#: slices planned per cursor: a cursor that ends early takes the next slice, so the tail stays short; more
#: would cost probes and partly filled last pages for no gain
SLICES_PER_CURSOR = 2
#: no slice is planned smaller than this many pages of the cursor (each costs a start and a partial page)
MIN_SLICE_PAGES = 4
#: a boundary is final when the badges before it are within this share of one slice of its target, so a
#: slice holds ``1 +- 2 * _TOLERANCE`` times its share (unless one day is bigger than that)
_TOLERANCE = 0.05
#: count probes allowed per slice (the range probes aside); past it, boundaries take the best day known
_PROBES_PER_SLICE = 4
#: probes in flight at most (each also takes a slot of the caller's limiter, when given)
_MAX_PROBE_THREADS = 32
_PLAN_MARK = "\nslices="
_ONE_DAY = timedelta(days=1)

#: counts the badges created on days ``lo..hi`` (inclusive ISO dates)
DayCounter = Callable[[date, date], int]


class _Limiter(Protocol):
    def slot(self) -> AbstractContextManager[None]: ...


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


#: receives each slice of a plan as soon as it is final, in plan order (called on the planning thread)
SliceSink = Callable[[Slice], None]


@dataclass(frozen=True)
class SlicePlan:
    """The slices and what planning cost.

    :ivar slices: contiguous, disjoint, covering the whole range (open at both ends unless bounded).
    :ivar probes: count requests made (the range probes included).
    :ivar total: badges counted over the whole range.
    :ivar rounds: rounds of concurrent probes (each costs about one round trip).
    """

    slices: tuple[Slice, ...]
    probes: int
    total: int
    rounds: int = 0

    def bounds(self) -> list[list[str | None]]:
        """``[[since, until], ...]`` (JSON-friendly; part of the load's fingerprint)."""
        return [[s.since, s.until] for s in self.slices]


@dataclass(frozen=True)
class SlicedPages:
    """The page source of a sliced load (:meth:`~airflow_provider_credly.warehouse.transfer.TransferRun.run_sliced`).

    :ivar plan: ``plan(on_slice)`` plans the slices and returns them (called on a planning thread, only when no
        unfinished load of the same request has a plan); it may hand each slice to ``on_slice`` as soon as it
        is final, in order, so its cursor starts before the plan is complete (slices returned but not handed
        over are taken at the end).
    :ivar open: ``open(slice, start_url)`` -> that slice's pages from a saved cursor URL (``None``: its start);
        called in a fetch thread.
    :ivar workers: slices fetched at once.
    """

    plan: Callable[[SliceSink], Sequence[Slice]]
    open: Callable[[Slice, str | None], Iterator[Any]]
    workers: int


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


class _Slicer:
    """The slices of one plan, emitted in order as their boundaries become final."""

    def __init__(self, since: str | None, until: str | None, first: date, last: date, sink: SliceSink | None):
        self.since, self.until, self.first, self.last, self.sink = since, until, first, last, sink
        self.slices: list[Slice] = []
        self._prev: date | None = None  # the last day of the previous slice
        self._prev_count = 0

    def cut(self, day: date, cumulative: int) -> None:
        """End a slice at ``day`` (badges up to it: ``cumulative``); a cut that would leave an empty slice,
        or none after it, is skipped."""
        if day < self.first or day >= self.last or (self._prev is not None and day <= self._prev):
            return
        self._emit(day.isoformat(), cumulative)
        self._prev = day

    def close(self, total: int) -> tuple[Slice, ...]:
        self._emit(self.until, total)
        return tuple(self.slices)

    def _emit(self, until: str | None, cumulative: int) -> None:
        lo = self.since if self._prev is None else (self._prev + _ONE_DAY).isoformat()
        piece = Slice(len(self.slices), lo, until, max(0, cumulative - self._prev_count))
        self._prev_count = cumulative
        self.slices.append(piece)
        if self.sink is not None:
            self.sink(piece)


def plan_slices(
    count: DayCounter,
    first: date,
    last: date,
    total: int,
    *,
    slices: int,
    since: str | None = None,
    until: str | None = None,
    workers: int = 1,
    tolerance: float = _TOLERANCE,
    max_probes: int | None = None,
    on_slice: SliceSink | None = None,
) -> SlicePlan:
    """``slices`` slices of ``first..last`` holding about ``total / slices`` badges each (fewer slices when a
    day holds more than its share: a single day is never split).

    Boundary ``j`` is the day up to which about ``j * total / slices`` badges were created: each round probes,
    for every boundary not final yet, the day interpolated between the two nearest counts known around its
    target (the middle day instead when the last probe did not halve that bracket), all at once. A boundary is
    final when a known day is within ``tolerance * total / slices`` badges of its target, when its bracket is
    one day wide, or when the probe budget is spent (then the nearest known day). Deterministic: the same
    counts give the same plan, whatever ``workers`` and the timing. The first slice starts at ``since`` and
    the last ends at ``until`` (``None``: open), so badges outside ``first..last`` (created during the load)
    are still covered.

    :param count: badges created on days ``lo..hi``; called with ``lo = first`` (a running total).
    :param first: the first day with a badge; :param last: the last one.
    :param total: badges in ``first..last`` (known from the range probe).
    :param slices: the slices wanted (>= 1).
    :param workers: probes made at once (those of one round are independent).
    :param tolerance: how far from its share a boundary may be, as a share of one slice (0 < x < 0.5).
    :param max_probes: the probe budget (default ``4 * slices``).
    :param on_slice: called with each slice as soon as it is final, in order (before this returns).
    """
    if slices < 1:
        raise ValueError(f"slices must be at least 1, got {slices}")
    if not 0 < tolerance < 0.5:
        raise ValueError(f"tolerance must be within (0, 0.5), got {tolerance}")
    slicer = _Slicer(since, until, first, last, on_slice)
    wanted = min(slices, max(1, total))
    if total <= 0 or first >= last or wanted == 1:
        return SlicePlan(slicer.close(total), 0, total)
    budget = _PROBES_PER_SLICE * wanted if max_probes is None else max(0, max_probes)
    share = total / wanted
    tol = tolerance * share
    targets = [share * j for j in range(1, wanted)]
    days = [first - _ONE_DAY, last]  # known days (sorted) and the badges up to each, inclusive
    cums = [0, total]
    final: list[date | None] = [None] * len(targets)
    widths = [0] * len(targets)  # each boundary's bracket width when it was last probed (0: never)
    emitted = probes = rounds = 0
    known = {first - _ONE_DAY: 0, last: total}  # the same counts as days/cums, by day

    def emit() -> None:
        nonlocal emitted
        while emitted < len(targets) and (day := final[emitted]) is not None:
            slicer.cut(day, known[day])
            emitted += 1

    with ThreadPoolExecutor(max_workers=max(1, min(workers, _MAX_PROBE_THREADS))) as pool:
        while True:
            asks: dict[date, list[int]] = {}  # this round's probes (in boundary order) and who asked
            for j, target in enumerate(targets):
                if final[j] is not None:
                    continue
                i = bisect.bisect_right(cums, target) - 1  # cums[i] <= target < cums[i + 1]
                lo, hi, below, above = days[i], days[i + 1], cums[i], cums[i + 1]
                width = (hi - lo).days
                if min(target - below, above - target) <= tol or width <= 1 or probes + len(asks) >= budget:
                    final[j] = lo if target - below <= above - target else hi
                    continue
                if widths[j] and width * 2 > widths[j]:  # interpolation stalled: bisect
                    step = width // 2
                else:
                    step = round((target - below) / max(1, above - below) * width)
                widths[j] = width
                asks.setdefault(lo + timedelta(days=min(width - 1, max(1, step))), []).append(j)
            emit()
            if not asks:
                break
            probes += len(asks)
            rounds += 1
            futures = {pool.submit(count, first, day): day for day in asks}
            got: dict[date, int] = {}
            for future in as_completed(futures):
                day = futures[future]
                i = bisect.bisect_left(days, day)
                # counts move while the load runs: keep the running totals monotonic (against the counts
                # known before this round only, so the result does not depend on the answers' order)
                got[day] = known[day] = n = min(max(future.result(), cums[i - 1]), cums[i])
                # a boundary whose own probe landed within the tolerance is final now: its slices can start
                # before the round's other answers (the same decision the end of the round would make)
                for j in asks[day]:
                    if abs(n - targets[j]) <= tol:
                        final[j] = day
                emit()
            for day in asks:  # in day order within each bracket: still monotonic
                i = bisect.bisect_left(days, day)
                days.insert(i, day)
                cums.insert(i, max(got[day], cums[i - 1]))
                known[day] = cums[i]
    return SlicePlan(slicer.close(total), probes, total, rounds)


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


def _page_size(client: CredlyClient, filters: Mapping[str, Any], badge_format: BadgeFormat) -> int | None:
    """Records on a full page of the high-volume cursor over ``filters`` (``None``: it has one page only)."""
    pages = client.iter_high_volume_badge_pages(filters, badge_format=badge_format)
    try:
        page = next(pages, None)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
    return len(page) if page is not None and page.next_url else None


def _filters(filters: Mapping[str, Any] | str | None) -> dict[str, Any]:
    return dict(parse_filter(filters) if isinstance(filters, str) else (filters or {}))


def plan_badge_slices(
    client: CredlyClient,
    filters: Mapping[str, Any] | str | None = None,
    *,
    slices: int,
    min_badges: int = 1_000,
    min_pages: int = 0,
    badge_format: BadgeFormat = "minimal",
    workers: int = 1,
    limiter: _Limiter | None = None,
    on_slice: SliceSink | None = None,
    max_probes: int | None = None,
) -> SlicePlan:
    """Plan up to ``slices`` created_at slices of about equal size of the badges matching ``filters``.

    The range is ``filters``' ``created_at_min..created_at_max``, narrowed to the first and last days with
    a matching badge (two probes sorted by ``created_at``, made at once); the first and last slices keep
    ``filters``' bounds (open when unset). No slice is planned smaller than ``min_badges`` nor, when
    ``min_pages`` is set, than that many pages of the high-volume cursor (its page size is read from one
    first page, fetched with the range probes): a slice costs a cursor start and a partly filled last page.

    :param client: the Credly client (its organization's badges).
    :param filters: the search's badge filters (dict or ``key::value|...`` text).
    :param slices: the most slices wanted (fewer when there are fewer badges).
    :param min_badges: no slice is planned smaller than this.
    :param min_pages: no slice is planned smaller than this many cursor pages (0: no page-size probe).
    :param badge_format: the cursor's format (for the page-size probe).
    :param workers: count requests made at once.
    :param limiter: every probe takes a slot of it (``AdaptiveLimiter``: shared with the cursors, so 429s
        slow the planning too).
    :param on_slice: called with each slice as soon as it is final, in order (see :func:`plan_slices`).
    :param max_probes: the budget of count probes after the range probes (default 4 per slice).
    """
    base = _filters(filters)
    since = format_date(base["created_at_min"], key="created_at_min") if base.get("created_at_min") else None
    until = format_date(base["created_at_max"], key="created_at_max") if base.get("created_at_max") else None
    slot = limiter.slot if limiter is not None else nullcontext
    probe = badge_counter(client, base)

    def limited(call: Callable[[], Any]) -> Any:
        with slot():
            return call()

    calls: list[Callable[[], Any]] = [lambda: probe(sort="created_at"), lambda: probe(sort="-created_at")]
    if min_pages > 0:
        calls.append(lambda: _page_size(client, base, badge_format))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls)))) as pool:
        found = list(pool.map(limited, calls))
    (total, oldest), (_, newest) = found[0], found[1]
    page_size = found[2] if min_pages > 0 else None
    first_probes = len(calls)
    if total == 0 or oldest is None or not oldest.get("created_at"):
        return SlicePlan(
            _Slicer(since, until, date.min, date.min, on_slice).close(total), first_probes, total, 1
        )
    first = _day(str(oldest["created_at"]))
    last = _day(str((newest or oldest).get("created_at") or oldest["created_at"]))
    smallest = max(1, int(min_badges))
    if page_size:  # (a search that fits in one page has no page size to respect)
        smallest = max(smallest, min_pages * page_size)
    wanted = max(1, min(int(slices), total // smallest))

    def count(lo: date, hi: date) -> int:
        with slot():
            return int(probe(lo, hi)[0])

    plan = plan_slices(
        count,
        first,
        last,
        total,
        slices=wanted,
        since=since,
        until=until,
        workers=workers,
        max_probes=max_probes,
        on_slice=on_slice,
    )
    return SlicePlan(plan.slices, plan.probes + first_probes, total, plan.rounds + 1)


def badge_slice_source(
    client: CredlyClient,
    filters: Mapping[str, Any] | None,
    *,
    cursors: int,
    limiter: AdaptiveLimiter,
    badge_format: BadgeFormat = "default",
    rate: RequestRate | None = None,
    min_badges: int = 1_000,
    on_plan: Callable[[SlicePlan], None] | None = None,
) -> SlicedPages:
    """The sliced high-volume badge search over ``cursors`` cursors (what ``parallel_cursors`` runs).

    The plan (:func:`plan_badge_slices`: up to :data:`SLICES_PER_CURSOR` slices per cursor, none smaller than
    ``min_badges`` nor :data:`MIN_SLICE_PAGES` pages) probes with all of a round's requests at once; every
    probe and every page request takes a slot of ``limiter`` (429s from any of them slow all), and page
    requests also wait for ``rate``.

    :param client: the Credly client.
    :param filters: the request's badge filters (each slice adds its created_at bounds).
    :param cursors: cursors read at once.
    :param limiter: the shared adaptive limit (usually ``AdaptiveLimiter(cursors)``).
    :param badge_format: the cursor's format.
    :param rate: optional pace of the page requests, in total.
    :param min_badges: no slice is planned smaller than this.
    :param on_plan: called with the complete plan (logging, counters).
    """
    base = dict(filters or {})

    def plan(on_slice: SliceSink) -> Sequence[Slice]:
        made = plan_badge_slices(
            client,
            base,
            slices=cursors * SLICES_PER_CURSOR,
            min_badges=min_badges,
            min_pages=MIN_SLICE_PAGES,
            badge_format=badge_format,
            workers=_MAX_PROBE_THREADS,
            limiter=limiter,
            on_slice=on_slice,
        )
        if on_plan is not None:
            on_plan(made)
        return made.slices

    def open_slice(piece: Slice, start_url: str | None) -> Iterator[Page]:
        pages = client.iter_high_volume_badge_pages(
            piece.filters(base), badge_format=badge_format, start_url=start_url
        )
        return paced(pages, limiter, rate)

    return SlicedPages(plan, open_slice, cursors)


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
    plan = plan_badge_slices(client, base, slices=partitions, min_badges=min_badges, workers=partitions)
    return [s.as_partition() for s in plan.slices]


def sliced_fingerprint(fingerprint: str, slices: Sequence[Slice]) -> str:
    """The fingerprint of a sliced load: the request's plus the plan (a new plan is a new load)."""
    return fingerprint + _PLAN_MARK + json.dumps([[s.since, s.until] for s in slices])


def planning_fingerprint(fingerprint: str) -> str:
    """The fingerprint of a sliced load whose plan is not complete yet: it never resumes (no plan in it;
    the first commit replaces it with :func:`sliced_fingerprint`)."""
    return fingerprint + _PLAN_MARK + "null"


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
        return [Slice(i, lo, hi) for i, (lo, hi) in enumerate(bounds)] if bounds else None
    except (ValueError, TypeError):
        return None
