"""Exactly-once Canvas Credentials awards, one and bulk. Pure Python: no Airflow import.

The rule is the Credly issuer's (:mod:`airflow_provider_credly.issuing.credly`), with the server's help:
every award is sent with ``allowDuplicateAwards: false``, so the HTTP core may repeat a POST whose outcome
is unknown, and the "A previous award of this badge already exists" 400 (from such a repeat, or from an
earlier task try) resolves to the recipient's existing assertion of the badge class: ``issued`` when it was
created at or after the row's first attempt (the task's first try on retries), else ``already_existed``
(or ``failed`` with ``if_exists="fail"``). Any other 400 fails the row with the server's message. The
bookkeeping and the bulk runner are :mod:`airflow_provider_credly.issuing.bulk`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_credly.client.canvas import (
    CanvasCredentialsClient,
    build_assertion_payload,
    is_duplicate_award_error,
)
from airflow_provider_credly.client.concurrency import AdaptiveLimiter, RequestRate
from airflow_provider_credly.client.errors import (
    UNKNOWN_OUTCOME_ERRORS,
    ApiError,
    RateLimitError,
    ValidationError,
)
from airflow_provider_credly.client.payloads import PayloadError
from airflow_provider_credly.issuing.bulk import (
    BulkIssueReport,
    ExactlyOnceIssuer,
    IfExists,
    InvalidRowsError,
    IssueResult,
    run_bulk,
)

log = logging.getLogger(__name__)

ASSERTION_FIELDS = frozenset(
    {
        "badgeclass",
        "recipient_identity",
        "recipient_type",
        "hashed",
        "issued_on",
        "expires",
        "narrative",
        "evidence",
        "extensions",
        "ob3_award_properties",
        "notify",
    }
)
"""Row keys accepted for an award (``recipient_email``/``email`` are aliases of ``recipient_identity``)."""
_ALIASES = {
    "recipient_email": "recipient_identity",
    "email": "recipient_identity",
    "badge_class_id": "badgeclass",
}


def assertion_summary(item: Mapping[str, Any]) -> dict[str, Any]:
    """The small, JSON-safe view of an assertion pushed to XCom."""
    raw = item.get("recipient")
    recipient: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return {
        "id": item.get("entityId"),
        "open_badge_id": item.get("openBadgeId"),
        "badgeclass": item.get("badgeclass"),
        "issuer": item.get("issuer"),
        "recipient": recipient.get("plaintextIdentity") or recipient.get("identity"),
        "issued_on": item.get("issuedOn"),
        "revoked": bool(item.get("revoked")),
    }


def validate_assertion_rows(
    rows: Iterable[Any], defaults: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Award fields for every row (row values win over ``defaults``), checked with
    :func:`build_assertion_payload`; raises :class:`InvalidRowsError` naming every invalid row.
    """
    out: list[dict[str, Any]] = []
    problems: dict[int, list[str]] = {}
    base = {_ALIASES.get(k, k): v for k, v in (defaults or {}).items() if v is not None}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems[i] = [f"expected a mapping of assertion fields, got {type(row).__name__}"]
            continue
        fields: dict[str, Any] = dict(base)
        fields.update({_ALIASES.get(str(k), str(k)): v for k, v in row.items() if v is not None})
        row_problems = [f"unknown field {k!r}" for k in sorted(set(fields) - ASSERTION_FIELDS)]
        if not fields.get("badgeclass"):
            row_problems.append("badgeclass is required (in the row or as the operator's badge class)")
        try:
            known: dict[str, Any] = {k: v for k, v in fields.items() if k in ASSERTION_FIELDS}
            build_assertion_payload(**known)
        except PayloadError as exc:
            row_problems.extend(exc.problems)
        if row_problems:
            problems[i] = row_problems
        else:
            fields["badgeclass"] = str(fields["badgeclass"]).strip()
            fields["recipient_identity"] = str(fields["recipient_identity"]).strip()
            out.append(fields)
    if problems:
        raise InvalidRowsError(problems, len(out) + len(problems))
    return out


class CanvasAssertionIssuer(ExactlyOnceIssuer[CanvasCredentialsClient]):
    """Awards badge classes exactly once through one (thread-safe) :class:`CanvasCredentialsClient`.

    :param client: the API client (shared by all workers).
    :param if_exists: ``"return"`` reports an award that already existed as ``already_existed``,
        ``"fail"`` as ``failed``.
    :param allow_duplicate_awards: ``False`` (default): the server refuses a second unrevoked award.
        ``True`` awards again even when the recipient holds the badge; an attempt with an unknown outcome
        is then checked by listing the recipient's assertions before it is repeated.
    :param max_attempts: attempts per row while answers are 5xx or lost (each repeat is refused by the
        server if an earlier one took effect, so repeating is safe).
    :param since: epoch seconds when the task's first try started (on retries); see
        :class:`ExactlyOnceIssuer`.
    :param recent_seconds: clock tolerance after an unknown outcome: an assertion created this long before
        the row's first attempt (or later) counts as this task's.
    """

    summarize = staticmethod(assertion_summary)
    existing_what = "an assertion"
    created_field = "createdAt"

    def __init__(
        self,
        client: CanvasCredentialsClient,
        *,
        if_exists: IfExists = "return",
        allow_duplicate_awards: bool = False,
        max_attempts: int = 8,
        since: float | None = None,
        recent_seconds: float = 120.0,
        limiter: AdaptiveLimiter | None = None,
        rate: RequestRate | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            client,
            if_exists=if_exists,
            max_attempts=max_attempts,
            limiter=limiter,
            rate=rate,
            since=since,
            recent_seconds=recent_seconds,
            sleep=sleep,
            clock=clock,
        )
        self.allow_duplicate_awards = allow_duplicate_awards

    def key(self, row: Mapping[str, Any]) -> Hashable:
        """The (badge class, recipient) of a validated row."""
        return str(row["badgeclass"]), str(row["recipient_identity"]).strip().lower()

    def _existing(self, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call(
            lambda: [
                a
                for a in self.client.iter_assertions(
                    "badgeclasses",
                    fields["badgeclass"],
                    recipient=fields["recipient_identity"],
                    include_expired=True,
                )
                if not a.get("revoked")
            ]
        )
        return sorted(found, key=lambda a: str(a.get("createdAt") or ""), reverse=True)

    def _recent_unclaimed(self, fields: Mapping[str, Any], first_attempt: float) -> dict[str, Any] | None:
        for item in self._existing(fields):
            if self.is_ours(item, first_attempt, uncertain=True) and self.claim(str(item["entityId"])):
                return item
        return None

    def _recovered(self, item: Mapping[str, Any], why: str) -> IssueResult:
        self._count_recovered()
        log.info("assertion %s found after %s", item.get("entityId"), why)
        return IssueResult("issued", assertion_summary(item))

    def issue(self, fields: Mapping[str, Any], *, check_existing: bool = False) -> IssueResult:
        """Award one validated row (see :func:`validate_assertion_rows`) exactly once.

        :param check_existing: first look for an unrevoked award of the badge class to the recipient
            (useful on task retries when duplicates are allowed; with duplicates refused the server does it).
        """
        first_attempt = self.first_attempt()
        try:
            if check_existing:
                for item in self._existing(fields):
                    if self.claim(str(item["entityId"])):
                        return self.adopt(item, first_attempt)
            return self._issue(fields, first_attempt)
        except ApiError as exc:  # a look-up failed after its own retries
            return IssueResult("failed", None, f"outcome unknown, look-up failed: {exc}", exc)

    def _issue(self, fields: Mapping[str, Any], first_attempt: float) -> IssueResult:
        body = {k: v for k, v in fields.items() if k != "badgeclass"}
        last: ApiError | None = None
        uncertain = False  # an earlier attempt of this row may have taken effect
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            if attempt > 1:
                self._sleep(self.client.http.retry.backoff(attempt - 1))
            try:
                item = self._call(
                    lambda: self.client.issue_assertion(
                        "badgeclasses",
                        fields["badgeclass"],
                        allow_duplicate_awards=self.allow_duplicate_awards,
                        retry_unknown=False,
                        **body,
                    )
                )
            except ValidationError as exc:
                if not is_duplicate_award_error(exc):
                    reason = f"rejected ({exc.status}): {'; '.join(exc.messages)}"
                    return IssueResult("failed", None, reason, exc)
                return self._resolve_duplicate(fields, first_attempt, uncertain)
            except RateLimitError as exc:  # not applied; the core already waited as long as allowed
                last = exc
                self._sleep(exc.retry_after or 1.0)
                continue
            except UNKNOWN_OUTCOME_ERRORS as exc:  # the POST may or may not have taken effect
                last, uncertain = exc, True
                if self.allow_duplicate_awards:  # the server will not refuse a repeat: look first
                    found = self._recent_unclaimed(fields, first_attempt)
                    if found:
                        return self._recovered(found, f"an unknown outcome ({exc})")
                continue
            except ApiError as exc:
                return IssueResult("failed", None, str(exc), exc)
            if item.get("entityId"):
                self.claim(str(item["entityId"]))
            return IssueResult("issued", assertion_summary(item))
        return IssueResult("failed", None, f"not issued after {attempt} attempt(s): {last}")

    def _resolve_duplicate(
        self, fields: Mapping[str, Any], first_attempt: float, uncertain: bool
    ) -> IssueResult:
        """The server refused a second award: the recipient's newest unclaimed unrevoked assertion is this
        row's; ``issued`` only when created at or after the row's first attempt (a refusal whose answer was
        lost and repeated, or an earlier try's award), else it already existed."""
        existing = self._existing(fields)
        if not existing:
            return IssueResult("failed", None, "duplicate award reported but no unrevoked assertion found")
        chosen = next((c for c in existing if self.claim(str(c["entityId"]))), None)
        if chosen is None:  # another row of this run has it
            return self.existing_result(existing[0])
        if not self.is_ours(chosen, first_attempt, uncertain=uncertain):
            return self.existing_result(chosen)
        if uncertain:
            return self._recovered(chosen, "a duplicate-award refusal of a repeated request")
        return IssueResult("issued", assertion_summary(chosen))


def run_bulk_award(
    client: CanvasCredentialsClient,
    rows: Sequence[Mapping[str, Any]],
    *,
    workers: int = 8,
    max_failures: int = 0,
    if_exists: IfExists = "return",
    allow_duplicate_awards: bool = False,
    check_existing: bool = False,
    since: float | None = None,
    max_requests_per_second: float | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[dict[str, int]], None] | None = None,
    progress_every: float = 10.0,
) -> BulkIssueReport:
    """Award every validated row once; stops taking new rows once failures exceed ``max_failures``
    (the runner is :func:`~airflow_provider_credly.issuing.bulk.run_bulk`, as for Credly badges).

    :param since: epoch seconds when the task's first try started (on retries): assertions created since
        then are reported ``issued``, older ones by ``if_exists``.
    """
    limiter = AdaptiveLimiter(max(1, workers))
    issuer = CanvasAssertionIssuer(
        client,
        if_exists=if_exists,
        allow_duplicate_awards=allow_duplicate_awards,
        since=since,
        limiter=limiter,
        rate=RequestRate(max_requests_per_second),
    )
    return run_bulk(
        issuer,
        rows,
        http=client.http,
        limiter=limiter,
        workers=workers,
        max_failures=max(0, max_failures),  # a negative threshold stops at the first failure, as 0 does
        check_existing=check_existing,
        stop=stop,
        progress=progress,
        progress_every=progress_every,
    )
