"""Exactly-once badge issuing, for one badge and for bulk jobs. Pure Python: no Airflow import.

The HTTP core never repeats a ``POST`` whose outcome is unknown (5xx, read timeout, dropped connection).
:class:`BadgeIssuer` resolves such cases by looking the badge up (same template and recipient email, and the
same ``issuer_earner_id`` when one is given): an unclaimed badge created at or after the row's first attempt
means the attempt took effect, otherwise the badge is issued again. Only Credly's duplicate refusal (a 422
saying the user "already has this badge", on a template that refuses duplicates) resolves to the existing
badge; any other 422 fails the row with Credly's message. On an Airflow task retry the bulk runner first
reads the existing badges of the involved templates in one pass, so rows issued by an earlier try are not
issued twice even on templates that allow duplicate badges.

Who made a badge found for a row is told by its creation time: at or after the row's first attempt (the
task's first try, when the operator passes ``since``; less ``recent_seconds`` of clock tolerance after an
unknown outcome), it is this task's work (``issued``); older, it already existed (``already_existed``, or
``failed`` with ``if_exists="fail"``). Rows with the same template and recipient never run at the same time and run in
row order, so each badge created is credited to exactly one row.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.errors import (
    UNKNOWN_OUTCOME_ERRORS,
    ApiError,
    RateLimitError,
    ValidationError,
)
from airflow_provider_credly.client.payloads import PayloadError, build_issue_payload
from airflow_provider_credly.concurrency import AdaptiveLimiter, RequestRate, observe_throttling, run_pool
from airflow_provider_credly.warehouse.schema import parse_timestamp

__all__ = [
    "OUTCOMES",
    "BadgeIssuer",
    "BulkIssueReport",
    "ExactlyOnceIssuer",
    "IfExists",
    "InvalidRowsError",
    "IssueResult",
    "RowIssuer",
    "badge_summary",
    "find_existing_badges",
    "is_duplicate_badge_error",
    "prefetch_existing",
    "run_bulk",
    "run_bulk_issue",
    "validate_rows",
]

log = logging.getLogger(__name__)

IfExists = Literal["return", "fail"]
OUTCOMES = ("issued", "already_existed", "failed", "skipped")
ACTIVE_STATES = ("pending", "accepted", "rejected")
_MAX_PROBLEM_ROWS_SHOWN = 50
#: Credly's duplicate refusal: attribute ``user``, "Validation failed: User already has this badge".
_DUPLICATE_BADGE = re.compile(r"\balready has this badge\b", re.IGNORECASE)

Key = tuple[str, str]
ClientT = TypeVar("ClientT")


def _key(template_id: Any, email: Any) -> Key:
    return str(template_id).strip(), str(email).strip().lower()


def badge_summary(badge: Mapping[str, Any]) -> dict[str, Any]:
    """The small, JSON-safe view of a badge pushed to XCom."""
    template = badge.get("badge_template")
    return {
        "id": badge.get("id"),
        "state": badge.get("state"),
        "url": badge.get("badge_url") or badge.get("accept_badge_url"),
        "badge_template_id": template.get("id") if isinstance(template, Mapping) else None,
        "recipient_email": badge.get("recipient_email"),
        "issuer_earner_id": badge.get("issuer_earner_id"),
    }


def _matches(badge: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    template = badge.get("badge_template")
    template_id = template.get("id") if isinstance(template, Mapping) else badge.get("badge_template_id")
    if _key(template_id, badge.get("recipient_email") or "") != _key(
        payload["badge_template_id"], payload["recipient_email"]
    ):
        return False
    if badge.get("state") not in ACTIVE_STATES:
        return False
    wanted = payload.get("issuer_earner_id")
    return wanted in (None, "") or str(badge.get("issuer_earner_id") or "") == str(wanted)


def is_duplicate_badge_error(exc: BaseException) -> bool:
    """Whether ``exc`` is Credly's duplicate-badge refusal (a 422 saying the user "already has this badge");
    any other validation error (archived template, ``expires_at`` before ``issued_at``, blank field...) is not.
    """
    return isinstance(exc, ValidationError) and any(_DUPLICATE_BADGE.search(m) for m in exc.messages)


def _allows_duplicates(badge: Mapping[str, Any]) -> bool:
    template = badge.get("badge_template")
    return isinstance(template, Mapping) and template.get("allow_duplicate_badges") is True


def find_existing_badges(client: CredlyClient, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Non-revoked badges of ``payload``'s template and recipient email (and issuer_earner_id when given)."""
    filters = {
        "badge_template_id": payload["badge_template_id"],
        "recipient_email": payload["recipient_email"],
    }
    return [b for b in client.iter_badges(filters) if _matches(b, payload)]


@dataclass(frozen=True)
class IssueResult:
    """Outcome of issuing one badge: ``issued``, ``already_existed`` or ``failed`` (with ``reason``)."""

    outcome: str
    badge: dict[str, Any] | None = None
    reason: str | None = None

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
        return _key(row["badge_template_id"], row["recipient_email"])

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


class BadgeIssuer(ExactlyOnceIssuer[CredlyClient]):
    """Issues badges exactly once through one (thread-safe) :class:`CredlyClient`.

    :param client: the API client (shared by all workers).
    :param if_exists: ``"return"`` reports an existing badge as ``already_existed``; ``"fail"`` as ``failed``.
    :param max_attempts: POST attempts per badge when the outcome stays unknown and no badge is found.
    :param limiter: optional concurrency limit held around each request.
    :param rate: optional client-side pacing of the POSTs.
    """

    summarize = staticmethod(badge_summary)
    existing_what = "a badge"

    def _find_unclaimed(
        self, payload: Mapping[str, Any], created_after: float | None = None
    ) -> dict[str, Any] | None:
        """The first existing badge of ``payload`` no other row has (claimed for this row); with
        ``created_after``, only one this task may have created."""
        for badge in self._call(lambda: find_existing_badges(self.client, payload)):
            if created_after is not None and not self.is_ours(badge, created_after, uncertain=True):
                continue
            if self.claim(str(badge["id"])):
                return dict(badge)
        return None

    def issue(self, payload: Mapping[str, Any], *, check_existing: bool = False) -> IssueResult:
        """Issue one validated payload (see :func:`build_issue_payload`), exactly once.

        :param check_existing: look for an existing badge before issuing (done on task retries).
        """
        first_attempt = self.first_attempt()
        try:
            if check_existing:
                found = self._find_unclaimed(payload)
                if found:
                    return self.adopt(found, first_attempt)
            return self._issue(payload, first_attempt)
        except ApiError as exc:  # a look-up failed after its own retries
            return IssueResult("failed", None, f"outcome unknown, look-up failed: {exc}")

    def _issue(self, payload: Mapping[str, Any], first_attempt: float) -> IssueResult:
        attempt = 0
        last: ApiError | None = None
        uncertain = False  # an earlier attempt of this row may have taken effect
        while attempt < self.max_attempts:
            attempt += 1
            try:
                badge = self._call(lambda: self.client.issue_badge(**payload))
            except ValidationError as exc:
                return self._rejected(payload, exc, first_attempt, uncertain)
            except RateLimitError as exc:  # not applied; the core already waited as long as allowed
                last = exc
                self._sleep(exc.retry_after or 1.0)
                continue
            except UNKNOWN_OUTCOME_ERRORS as exc:  # the POST may or may not have taken effect
                last, uncertain = exc, True
                # only a badge created since the row's first attempt can be this POST's effect
                found = self._find_unclaimed(payload, created_after=first_attempt)
                if found:
                    self._count_recovered()
                    log.info("badge %s found after an unknown outcome (%s)", found.get("id"), exc)
                    return IssueResult("issued", badge_summary(found))
                continue
            except ApiError as exc:
                return IssueResult("failed", None, str(exc))
            if badge.get("id"):
                self.claim(str(badge["id"]))
            return IssueResult("issued", badge_summary(badge))
        return IssueResult("failed", None, f"not issued after {attempt} attempt(s): {last}")

    def _rejected(
        self, payload: Mapping[str, Any], exc: ValidationError, first_attempt: float, uncertain: bool
    ) -> IssueResult:
        """A 422: the existing badge for Credly's duplicate refusal, else a failure with Credly's message."""
        rejected = f"rejected ({exc.status}): {'; '.join(exc.messages)}"
        if not is_duplicate_badge_error(exc):
            return IssueResult("failed", None, rejected)
        try:
            found = self._call(lambda: find_existing_badges(self.client, payload))
        except ApiError as lookup:
            return IssueResult("failed", None, f"{rejected}; look-up of an existing badge failed: {lookup}")
        if not found:
            return IssueResult("failed", None, f"{rejected}; no existing badge found")
        if any(_allows_duplicates(b) for b in found):  # such a template never refuses a duplicate
            return IssueResult("failed", None, f"{rejected} (the template allows duplicate badges)")
        mine = next((b for b in found if self.claim(str(b["id"]))), None)
        if mine is not None:
            return self.adopt(mine, first_attempt, uncertain=uncertain)
        return self.existing_result(found[0])  # another row of this run has it


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


def validate_rows(
    rows: Iterable[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Issue payloads for every row (row values win over ``defaults``); raises :class:`InvalidRowsError`
    naming every invalid row and all its problems.
    """
    payloads: list[dict[str, Any]] = []
    problems: dict[int, list[str]] = {}
    base = {k: v for k, v in (defaults or {}).items() if v is not None}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems[i] = [f"expected a mapping of badge fields, got {type(row).__name__}"]
            continue
        fields = {**base, **{k: v for k, v in row.items() if v is not None}}
        try:
            payloads.append(build_issue_payload(fields))
        except PayloadError as exc:
            problems[i] = exc.problems
    if problems:
        raise InvalidRowsError(problems, len(payloads) + len(problems))
    return payloads


def prefetch_existing(
    client: CredlyClient, payloads: Sequence[Mapping[str, Any]]
) -> dict[Key, list[dict[str, Any]]]:
    """One pass over the non-revoked badges of the involved templates (high-volume cursor, minimal
    format), keeping only those whose recipient email appears in ``payloads``.
    """
    templates = sorted({str(p["badge_template_id"]) for p in payloads})
    emails = {str(p["recipient_email"]).strip().lower() for p in payloads}
    index: dict[Key, list[dict[str, Any]]] = {}
    if not templates:
        return index
    filters = {"badge_template_id": templates, "state": list(ACTIVE_STATES)}
    for page in client.iter_high_volume_badge_pages(filters, badge_format="minimal"):
        for badge in page.items:
            email = str(badge.get("recipient_email") or "").strip().lower()
            if email not in emails:
                continue
            template = badge.get("badge_template") or {}
            index.setdefault(_key(template.get("id"), email), []).append(badge)
    return index


@dataclass
class BulkIssueReport:
    """Per-row outcomes of a bulk issue; every row has exactly one outcome among :data:`OUTCOMES`."""

    total: int
    outcomes: list[str] = field(default_factory=list)
    badge_ids: list[str | None] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    throttled: int = 0
    recovered: int = 0

    def __post_init__(self) -> None:
        if not self.outcomes:
            self.outcomes = ["skipped"] * self.total
            self.badge_ids = [None] * self.total
            self.reasons = ["not attempted: the job stopped before this row"] * self.total

    def set(self, index: int, result: IssueResult) -> None:
        """Record the result of row ``index``."""
        self.outcomes[index] = result.outcome
        self.badge_ids[index] = result.badge_id
        self.reasons[index] = result.reason

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


def run_bulk_issue(
    client: CredlyClient,
    payloads: Sequence[Mapping[str, Any]],
    *,
    workers: int = 8,
    max_failures: int = 0,
    if_exists: IfExists = "return",
    check_existing: bool = False,
    since: float | None = None,
    max_requests_per_second: float | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[dict[str, int]], None] | None = None,
    progress_every: float = 10.0,
) -> BulkIssueReport:
    """Issue every payload once; stops taking new rows once failures exceed ``max_failures``.

    :param payloads: validated issue payloads (see :func:`validate_rows`).
    :param workers: concurrent requests at most (lowered automatically while 429s are received).
    :param check_existing: first read the existing badges of the involved templates (task retries).
    :param since: epoch seconds when the task's first try started (on retries): badges created since
        then are reported ``issued``, older ones by ``if_exists`` (see :class:`ExactlyOnceIssuer`).
    :param max_requests_per_second: optional client-side pacing, to stay under a known rate limit.
    :param stop: set it to stop taking new rows (e.g. from ``on_kill``).
    :param progress: called with the running counts at most every ``progress_every`` seconds.
    """
    limiter = AdaptiveLimiter(max(1, workers))
    issuer = BadgeIssuer(
        client,
        if_exists=if_exists,
        limiter=limiter,
        rate=RequestRate(max_requests_per_second),
        since=since,
    )
    resolved: dict[int, IssueResult] = {}
    if check_existing and payloads:
        first_attempt = issuer.first_attempt()
        existing = prefetch_existing(client, payloads)
        for i, payload in enumerate(payloads):
            key = _key(payload["badge_template_id"], payload["recipient_email"])
            match = next(
                (b for b in existing.get(key, ()) if _matches(b, payload) and issuer.claim(str(b["id"]))),
                None,
            )
            if match is not None:
                resolved[i] = issuer.adopt(match, first_attempt)
        log.info("%d of %d row(s) already have their badge", len(resolved), len(payloads))
    return run_bulk(
        issuer,
        payloads,
        http=client.http,
        limiter=limiter,
        workers=workers,
        max_failures=max_failures,
        resolved=resolved,
        stop=stop,
        progress=progress,
        progress_every=progress_every,
    )
