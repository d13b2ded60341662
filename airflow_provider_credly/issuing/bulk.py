"""The backend-independent half of exactly-once issuing: per-row results and reports, the issuer base
(claims, pacing, the ``if_exists`` rule, telling this task's items from older ones) and the bulk runner
(worker pool, adaptive concurrency limit, one key at a time, failure threshold, progress).
Pure Python: no Airflow import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from airflow_provider_credly.client.concurrency import (
    AdaptiveLimiter,
    RequestRate,
    observe_throttling,
    run_pool,
)
from airflow_provider_credly.client.times import parse_timestamp

IfExists = Literal["return", "fail"]


OUTCOMES = ("issued", "already_existed", "failed", "skipped")


_MAX_PROBLEM_ROWS_SHOWN = 50


ClientT = TypeVar("ClientT")


@dataclass(frozen=True)
class IssueResult:
    """Outcome of issuing one badge: ``issued``, ``already_existed`` or ``failed`` (with ``reason``)."""

    outcome: str
    badge: dict[str, Any] | None = None
    reason: str | None = None
    #: the API error behind a failure, when one (the single-issue operators fail for good on a 401)
    error: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def badge_id(self) -> str | None:
        """The badge's id, when there is one."""
        return str(self.badge["id"]) if self.badge and self.badge.get("id") else None


class ExactlyOnceIssuer(Generic[ClientT]):
    """What the Credly and Canvas issuers share: the ``if_exists`` rule, the concurrency limit and pacing
    held around each call, the claims that attribute an existing item to one row only, the rule telling
    this task's items from older ones by creation time, and the count of items recovered after an unknown
    outcome.

    :param client: the API client (shared by all workers).
    :param if_exists: ``"return"`` reports an existing item as ``already_existed``; ``"fail"`` as ``failed``.
    :param max_attempts: attempts per row when the outcome stays unknown.
    :param limiter: optional concurrency limit held around each request.
    :param rate: optional client-side pacing of the requests.
    :param since: epoch seconds when an earlier try of this task started (its first try): items created
        since then are this task's. ``None``: each row's own first attempt in this run is the bound.
    :param recent_seconds: clock tolerance between this machine and the server, used only when an attempt
        of the row had an unknown outcome: an item created this long before the bound still counts as this
        task's. Otherwise the bound is exact (an earlier try's start precedes its items by far).
    """

    #: the small XCom view of an existing item, and how a "fail" result names it.
    summarize: Callable[[Mapping[str, Any]], dict[str, Any]]
    existing_what = "an item"
    #: the item's creation time field (ISO 8601).
    created_field = "created_at"

    def __init__(
        self,
        client: ClientT,
        *,
        if_exists: IfExists = "return",
        max_attempts: int = 5,
        limiter: AdaptiveLimiter | None = None,
        rate: RequestRate | None = None,
        since: float | None = None,
        recent_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if if_exists not in ("return", "fail"):
            raise ValueError(f"if_exists must be 'return' or 'fail', got {if_exists!r}")
        self.client = client
        self.if_exists = if_exists
        self.max_attempts = max(1, max_attempts)
        self.limiter = limiter
        self.rate = rate
        self.since = since
        self.recent_seconds = max(0.0, recent_seconds)
        self._sleep = sleep
        self._clock = clock
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self.recovered = 0

    def key(self, row: Mapping[str, Any]) -> Hashable:
        """The identity of what ``row`` creates (template, recipient): rows with the same key run one at a
        time, in row order."""
        raise NotImplementedError

    def first_attempt(self) -> float:
        """The bound for a row starting now: the earlier try's start (``since``), else now."""
        now = self._clock()
        return now if self.since is None else min(self.since, now)

    def is_ours(self, item: Mapping[str, Any], first_attempt: float, *, uncertain: bool = False) -> bool:
        """Whether ``item`` was created at or after ``first_attempt`` (less ``recent_seconds`` when an
        attempt of the row had an unknown outcome); an item without a readable creation time is not."""
        try:
            created = parse_timestamp(item.get(self.created_field))
        except ValueError:
            return False
        tolerance = self.recent_seconds if uncertain else 0.0
        return created is not None and created.timestamp() >= first_attempt - tolerance

    def adopt(self, item: Mapping[str, Any], first_attempt: float, *, uncertain: bool = False) -> IssueResult:
        """The result for an item found for a row and claimed by it: ``issued`` when this task created it
        (see :meth:`is_ours`), otherwise by ``if_exists``."""
        if self.is_ours(item, first_attempt, uncertain=uncertain):
            return IssueResult("issued", self.summarize(item))
        return self.existing_result(item)

    def claim(self, item_id: str) -> bool:
        """Attribute ``item_id`` to one row; ``False`` when another row already has it."""
        with self._lock:
            if item_id in self._claimed:
                return False
            self._claimed.add(item_id)
            return True

    def _call(self, fn: Callable[[], Any]) -> Any:
        if self.rate:
            self.rate.wait()
        if self.limiter is None:
            return fn()
        with self.limiter.slot():
            return fn()

    def _count_recovered(self) -> None:
        with self._lock:
            self.recovered += 1

    def existing_result(self, item: Mapping[str, Any]) -> IssueResult:
        """The result for an item that already existed, according to ``if_exists``."""
        summary = self.summarize(item)
        if self.if_exists == "fail":
            return IssueResult("failed", summary, f"{self.existing_what} already exists: {summary['id']}")
        return IssueResult("already_existed", summary)


class InvalidRowsError(ValueError):
    """Some input rows are invalid; ``problems`` maps each row index to its problems."""

    def __init__(self, problems: Mapping[int, list[str]], total: int) -> None:
        self.problems = dict(problems)
        shown = list(self.problems.items())[:_MAX_PROBLEM_ROWS_SHOWN]
        lines = [f"row {i}: {'; '.join(p)}" for i, p in shown]
        more = len(self.problems) - len(shown)
        if more > 0:
            lines.append(f"... and {more} more invalid row(s)")
        super().__init__(f"{len(self.problems)} of {total} row(s) are invalid:\n" + "\n".join(lines))


@dataclass
class BulkIssueReport:
    """Per-row outcomes of a bulk issue; every row has exactly one outcome among :data:`OUTCOMES`."""

    total: int
    outcomes: list[str] = field(default_factory=list)
    badge_ids: list[str | None] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    throttled: int = 0
    recovered: int = 0
    #: the API error behind each row's failure (``None``: no failure, or one of unknown cause)
    errors: list[Exception | None] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.outcomes:
            self.outcomes = ["skipped"] * self.total
            self.badge_ids = [None] * self.total
            self.reasons = ["not attempted: the job stopped before this row"] * self.total
        if len(self.errors) != self.total:
            self.errors = [None] * self.total

    def set(self, index: int, result: IssueResult) -> None:
        """Record the result of row ``index``."""
        self.outcomes[index] = result.outcome
        self.badge_ids[index] = result.badge_id
        self.reasons[index] = result.reason
        self.errors[index] = result.error if result.outcome == "failed" else None

    def failure_errors(self) -> list[Exception | None]:
        """The error behind every failed row (``None`` where its cause is unknown); rows not attempted
        are not failures."""
        return [e for o, e in zip(self.outcomes, self.errors, strict=True) if o == "failed"]

    def counts(self) -> dict[str, int]:
        """``{outcome: rows}`` for every outcome."""
        out = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes:
            out[outcome] += 1
        return out

    def rows(self) -> Iterable[tuple[int, str, str | None, str | None]]:
        """``(row_index, outcome, badge_id, reason)`` for every row."""
        return zip(range(self.total), self.outcomes, self.badge_ids, self.reasons, strict=True)

    def to_xcom(self, max_rows: int = 1000) -> dict[str, Any]:
        """``{"issued", "already_existed", "failed", "skipped", "total", "rows": [[i, outcome, id_or_reason]],
        "rows_truncated"}``; at most ``max_rows`` rows are listed, failed and skipped rows first.
        """
        listed = sorted(self.rows(), key=lambda r: (r[1] not in ("failed", "skipped"), r[0]))[:max_rows]
        listed.sort(key=lambda r: r[0])
        return {
            **self.counts(),
            "total": self.total,
            "throttled": self.throttled,
            "rows": [[i, outcome, badge_id or reason] for i, outcome, badge_id, reason in listed],
            "rows_truncated": self.total > len(listed),
        }


class RowIssuer(Protocol):
    """What :func:`run_bulk` needs of an issuer (:class:`BadgeIssuer`, ``CanvasAssertionIssuer``)."""

    recovered: int

    def key(self, row: Mapping[str, Any], /) -> Hashable: ...

    def issue(self, row: Mapping[str, Any], /, *, check_existing: bool = False) -> IssueResult: ...


def run_bulk(
    issuer: RowIssuer,
    rows: Sequence[Mapping[str, Any]],
    *,
    http: Any,
    limiter: AdaptiveLimiter,
    workers: int = 8,
    max_failures: int = 0,
    check_existing: bool = False,
    resolved: Mapping[int, IssueResult] | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[dict[str, int]], None] | None = None,
    progress_every: float = 10.0,
) -> BulkIssueReport:
    """Issue every row once with ``issuer`` (built with ``limiter``) on ``workers`` threads; stops taking
    new rows once failures exceed ``max_failures``. The generic runner behind :func:`run_bulk_issue` and
    ``run_bulk_award``.

    Rows with the same ``issuer.key`` (template, recipient) run one after the other in row order on one
    worker: an unknown outcome of one is resolved before the next starts, so each created item is
    credited to exactly one row.

    :param http: the client's HTTP core, whose 429 responses lower ``limiter``.
    :param check_existing: passed to ``issuer.issue`` for every row.
    :param resolved: results known before the run (e.g. rows found already issued); not issued again.
    :param stop: set it to stop taking new rows (e.g. from ``on_kill``).
    :param progress: called with the running counts at most every ``progress_every`` seconds.
    """
    report = BulkIssueReport(len(rows))
    stop = stop or threading.Event()
    resolved = resolved or {}
    for i, result in resolved.items():
        report.set(i, result)
    chains: dict[Hashable, list[int]] = {}
    for i in range(len(rows)):
        if i not in resolved:
            chains.setdefault(issuer.key(rows[i]), []).append(i)
    todo = list(chains.values())  # in order of each key's first row
    failures = sum(1 for o in report.outcomes if o == "failed")
    lock = threading.Lock()
    last_progress = [time.monotonic()]

    def work(n: int) -> None:
        for i in todo[n]:
            if stop.is_set():
                return
            record(i, issuer.issue(rows[i], check_existing=check_existing))

    def record(i: int, result: IssueResult) -> None:
        nonlocal failures
        with lock:
            report.set(i, result)
            if result.outcome == "failed":
                failures += 1
                if failures > max_failures:
                    stop.set()
            if progress and time.monotonic() - last_progress[0] >= progress_every:
                last_progress[0] = time.monotonic()
                progress(report.counts())

    with observe_throttling(http, limiter.on_throttled):
        if failures <= max_failures:
            run_pool(len(todo), work, workers=max(1, workers), stop=stop)
    report.throttled = limiter.throttled
    report.recovered = issuer.recovered
    return report
