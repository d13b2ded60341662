"""Exactly-once Credly badge issuing, for one badge and for bulk jobs. Pure Python: no Airflow import.

The HTTP core never repeats a ``POST`` whose outcome is unknown (5xx, read timeout, dropped connection,
malformed answer). :class:`BadgeIssuer` resolves such cases by looking the badge up (same template and
recipient email, and the same ``issuer_earner_id`` when one is given). Only Credly's duplicate refusal (a
422) means the badge exists; any other 422 fails the row with Credly's message. On an Airflow task retry
the bulk runner first reads the existing badges of the involved templates in one pass, so rows issued by
an earlier try are not issued twice even on templates that allow duplicate badges.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_credly.client.concurrency import (
    AdaptiveLimiter,
    RequestRate,
)
from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.errors import (
    UNKNOWN_OUTCOME_ERRORS,
    ApiError,
    RateLimitError,
    ValidationError,
)
from airflow_provider_credly.client.payloads import PayloadError, build_issue_payload
from airflow_provider_credly.issuing.bulk import (
    BulkIssueReport,
    ExactlyOnceIssuer,
    IfExists,
    InvalidRowsError,
    IssueResult,
    run_bulk,
)

log = logging.getLogger(__name__)

ACTIVE_STATES = ("pending", "accepted", "rejected")


#: Credly's duplicate refusal: attribute ``user``, "Validation failed: User already has this badge".
_DUPLICATE_BADGE = re.compile(r"\balready has this badge\b", re.IGNORECASE)


Key = tuple[str, str]


def _key(template_id: Any, email: Any) -> Key:
    return str(template_id).strip(), str(email).strip().lower()


def badge_summary(badge: Mapping[str, Any], location: str | None = None) -> dict[str, Any]:
    """The small, JSON-safe view of a badge pushed to XCom.

    :param location: the ``Location`` header of the issue response (the new badge's URL); ``None`` for a
        badge found by a look-up.
    """
    template = badge.get("badge_template")
    return {
        "id": badge.get("id"),
        "state": badge.get("state"),
        "url": badge.get("badge_url") or badge.get("accept_badge_url"),
        "badge_template_id": template.get("id") if isinstance(template, Mapping) else None,
        "recipient_email": badge.get("recipient_email"),
        "issuer_earner_id": badge.get("issuer_earner_id"),
        "location": location,
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

    def key(self, row: Mapping[str, Any]) -> Hashable:
        return _key(row["badge_template_id"], row["recipient_email"])

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
            return IssueResult("failed", None, f"outcome unknown, look-up failed: {exc}", exc)

    def _issue(self, payload: Mapping[str, Any], first_attempt: float) -> IssueResult:
        attempt = 0
        last: ApiError | None = None
        uncertain = False  # an earlier attempt of this row may have taken effect
        while attempt < self.max_attempts:
            attempt += 1
            try:
                created = self._call(lambda: self.client.issue_badge_located(**payload))
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
                return IssueResult("failed", None, str(exc), exc)
            badge = created.data
            if badge.get("id"):
                self.claim(str(badge["id"]))
            return IssueResult("issued", badge_summary(badge, created.location))
        return IssueResult("failed", None, f"not issued after {attempt} attempt(s): {last}")

    def _rejected(
        self, payload: Mapping[str, Any], exc: ValidationError, first_attempt: float, uncertain: bool
    ) -> IssueResult:
        """A 422: the existing badge for Credly's duplicate refusal, else a failure with Credly's message."""
        rejected = f"rejected ({exc.status}): {'; '.join(exc.messages)}"
        if not is_duplicate_badge_error(exc):
            return IssueResult("failed", None, rejected, exc)
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
