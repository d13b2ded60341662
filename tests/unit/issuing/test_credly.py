"""Unit tests of the exactly-once issuing logic (a fake client, no HTTP)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_credly.client.concurrency import AdaptiveLimiter, RequestRate, run_pool
from airflow_provider_credly.client.credly import Created
from airflow_provider_credly.client.errors import ApiConnectionError, ServerError, ValidationError
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.issuing.bulk import BulkIssueReport, InvalidRowsError, IssueResult, run_bulk
from airflow_provider_credly.issuing.credly import (
    BadgeIssuer,
    is_duplicate_badge_error,
    run_bulk_issue,
    validate_rows,
)

TPL = "tpl-1"
OLD = "2020-01-01T00:00:00.000Z"  # long before any test runs: a badge that existed before the task
DUPLICATE = "Validation failed: User already has this badge"
#: every 422 the reference documents (replace, revoke, delete) and the issue refusals it names
OTHER_422 = {
    "replaced": "Validation failed: This badge cannot be replaced because it has already been replaced.",
    "revoke_replaced": "Validation failed: This badge cannot be revoked because it has been replaced.",
    "delete_replaced": "You can not delete replaced badges. Delete the current version instead.",
    "archived": "Validation failed: An archived badge template cannot be used to issue new badges.",
    "expires_before_issued": "Validation failed: Expires at must be after issued at",
    "blank": "Validation failed: Issued to first name can't be blank",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "recipient_email": f"user{i}@example.com",
        "issued_to_first_name": "Ada",
        "issued_to_last_name": "Lovelace",
        "badge_template_id": TPL,
        "issued_at": "2026-01-01T00:00:00Z",
        **extra,
    }


class FakeHttp:
    """Stands in for HttpClient: run_bulk watches its responses, and the fake client sends none."""

    def observe(self, observer: Any) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class FakeClient:
    """Stores badges; ``plan`` decides per POST: "ok", "lost" (applied, 500 back), "error" (500, not applied),
    "drop" (connection dropped, applied), "dup422" or a key of :data:`OTHER_422`. Badges stored by the
    tests directly are :data:`OLD`; badges created by a POST are created now.
    """

    def __init__(
        self,
        plan: list[str] | None = None,
        existing: list[dict[str, Any]] | None = None,
        allow_duplicates: bool = False,
    ) -> None:
        self.http = FakeHttp()
        self.badges: list[dict[str, Any]] = list(existing or [])
        self.plan = list(plan or [])
        self.allow_duplicates = allow_duplicates
        self.posts = 0
        self.lookups = 0
        self.hv_calls = 0
        self.lock = threading.Lock()

    def _store(self, payload: Mapping[str, Any], created: str = OLD) -> dict[str, Any]:
        badge = {
            "id": f"b{len(self.badges)}",
            "state": "pending",
            "recipient_email": payload["recipient_email"],
            "issuer_earner_id": payload.get("issuer_earner_id"),
            "badge_template": {
                "id": payload["badge_template_id"],
                "allow_duplicate_badges": self.allow_duplicates,
            },
            "badge_url": "http://x/b",
            "created_at": created,
        }
        self.badges.append(badge)
        return badge

    def issue_badge(self, **payload: Any) -> dict[str, Any]:
        with self.lock:
            self.posts += 1
            step = self.plan.pop(0) if self.plan else "ok"
            if step == "dup422":
                raise ValidationError(DUPLICATE, status=422)
            if step in OTHER_422:
                raise ValidationError(OTHER_422[step], status=422)
            if step == "error":
                raise ServerError("boom", status=500)
            badge = self._store(payload, created=now_iso())
            if step == "lost":
                raise ServerError("boom", status=500)
            if step == "drop":
                raise ApiConnectionError("ConnectionError; not retried")
            return badge

    def issue_badge_located(self, **payload: Any) -> Created:
        return Created(self.issue_badge(**payload), None)

    def iter_badges(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            self.lookups += 1
            return [
                b
                for b in self.badges
                if b["badge_template"]["id"] == filters["badge_template_id"]
                and b["recipient_email"] == filters["recipient_email"]
            ]

    def iter_high_volume_badge_pages(self, filters: dict[str, Any], badge_format: str) -> list[Page]:
        self.hv_calls += 1
        assert badge_format == "minimal"
        items = [b for b in self.badges if b["badge_template"]["id"] in filters["badge_template_id"]]
        return [Page(items[:2], "u1", "u2", {}), Page(items[2:], "u2", None, {})]


def test_validate_rows_reports_every_invalid_row_at_once() -> None:
    rows = [row(0), {"recipient_email": "nope"}, row(2, locale="xx"), "not a dict", row(4)]
    with pytest.raises(InvalidRowsError) as info:
        validate_rows(rows)
    assert sorted(info.value.problems) == [1, 2, 3]
    text = str(info.value)
    assert "3 of 5 row(s) are invalid" in text
    assert "row 1:" in text
    assert "recipient_email" in text
    assert "issued_to_first_name" in text
    assert "row 2:" in text
    assert "locale" in text


def test_validate_rows_applies_defaults_under_row_values() -> None:
    payloads = validate_rows(
        [{k: v for k, v in row(0).items() if k != "issued_at"}, row(1, badge_template_id="other")],
        {"issued_at": "2025-05-05T10:00:00+00:00", "badge_template_id": "dflt"},
    )
    assert payloads[0]["issued_at"] == "2025-05-05 10:00:00 +0000"
    assert payloads[1]["badge_template_id"] == "other"


def test_issue_ok() -> None:
    client = FakeClient()
    result = BadgeIssuer(client).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == "issued"
    assert result.badge_id == "b0"
    assert client.lookups == 0


@pytest.mark.parametrize("step", ["lost", "drop"])
def test_unknown_outcome_that_took_effect_is_adopted_not_reissued(step: str) -> None:
    client = FakeClient(plan=[step])
    result = BadgeIssuer(client).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == "issued"
    assert result.badge_id == "b0"
    assert client.posts == 1
    assert len(client.badges) == 1


def test_unknown_outcome_that_did_not_take_effect_is_reissued() -> None:
    client = FakeClient(plan=["error", "error"])
    result = BadgeIssuer(client).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == "issued"
    assert client.posts == 3
    assert len(client.badges) == 1


def test_unknown_outcome_every_time_fails_after_max_attempts() -> None:
    client = FakeClient(plan=["error"] * 5)
    result = BadgeIssuer(client, max_attempts=2).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == "failed"
    assert "2 attempt" in (result.reason or "")
    assert not client.badges


@pytest.mark.parametrize(("if_exists", "outcome"), [("return", "already_existed"), ("fail", "failed")])
def test_duplicate_422_resolves_to_the_existing_badge(if_exists: str, outcome: str) -> None:
    client = FakeClient(plan=["dup422"])
    client._store(validate_rows([row(0)])[0])
    result = BadgeIssuer(client, if_exists=if_exists).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == outcome
    assert result.badge_id == "b0"


def test_422_without_an_existing_badge_fails_with_the_message() -> None:
    client = FakeClient(plan=["dup422"])
    result = BadgeIssuer(client).issue(validate_rows([row(0)])[0])  # type: ignore[arg-type]
    assert result.outcome == "failed"
    assert "already has this badge" in (result.reason or "")


def test_revoked_badges_and_other_earner_ids_do_not_count_as_existing() -> None:
    client = FakeClient()
    payload = validate_rows([row(0, issuer_earner_id="E1")])[0]
    client._store(payload)["state"] = "revoked"
    client._store({**payload, "issuer_earner_id": "E2"})
    result = BadgeIssuer(client).issue(payload, check_existing=True)  # type: ignore[arg-type]
    assert result.outcome == "issued"
    assert result.badge_id == "b2"


def test_bulk_retry_prefetches_once_and_skips_issued_rows() -> None:
    client = FakeClient()
    payloads = validate_rows([row(i) for i in range(5)])
    for p in payloads[:3]:
        client._store(p)
    report = run_bulk_issue(client, payloads, workers=2, check_existing=True)  # type: ignore[arg-type]
    assert report.counts() == {"issued": 2, "already_existed": 3, "failed": 0, "skipped": 0}
    assert client.hv_calls == 1
    assert client.posts == 2
    assert client.lookups == 0
    assert report.badge_ids[:3] == ["b0", "b1", "b2"]


def test_bulk_duplicate_rows_on_a_duplicates_allowed_template_each_get_one_badge() -> None:
    client = FakeClient()
    payloads = validate_rows([row(0), row(0)])
    client._store(payloads[0])
    report = run_bulk_issue(client, payloads, workers=1, check_existing=True)  # type: ignore[arg-type]
    assert report.outcomes == ["already_existed", "issued"]
    assert len(client.badges) == 2


def test_bulk_stops_cleanly_and_accounts_for_every_row() -> None:
    client = FakeClient(plan=["dup422"] * 3)
    payloads = validate_rows([row(i) for i in range(20)])
    report = run_bulk_issue(client, payloads, workers=1, max_failures=1)  # type: ignore[arg-type]
    counts = report.counts()
    assert counts["failed"] == 2
    assert counts["skipped"] == 18
    assert sum(counts.values()) == 20
    xcom = report.to_xcom(max_rows=5)
    assert xcom["failed"] == 2
    assert xcom["total"] == 20
    assert xcom["rows_truncated"] is True
    assert [r[1] for r in xcom["rows"]].count("failed") == 2
    assert len(xcom["rows"]) == 5


def test_report_xcom_shape() -> None:
    report = BulkIssueReport(3)
    report.set(0, IssueResult("issued", {"id": "b0"}))
    report.set(1, IssueResult("already_existed", {"id": "b1"}))
    report.set(2, IssueResult("failed", None, "rejected"))
    xcom = report.to_xcom()
    assert xcom["rows"] == [[0, "issued", "b0"], [1, "already_existed", "b1"], [2, "failed", "rejected"]]
    assert (xcom["issued"], xcom["already_existed"], xcom["failed"], xcom["skipped"]) == (1, 1, 1, 0)
    assert xcom["rows_truncated"] is False


def test_adaptive_limiter_halves_on_429_and_recovers() -> None:
    now = [0.0]
    limiter = AdaptiveLimiter(8, increase_after=2, cooldown=1.0, clock=lambda: now[0])
    limiter.on_throttled()
    limiter.on_throttled()  # same burst: counted once
    assert limiter.limit == 4
    assert limiter.throttled == 2
    now[0] = 2.0
    limiter.on_throttled()
    assert limiter.limit == 2
    for _ in range(4):
        with limiter.slot():
            pass
    assert limiter.limit == 4


def test_request_rate_spaces_calls() -> None:
    now = [0.0]
    slept: list[float] = []
    rate = RequestRate(10, clock=lambda: now[0], sleep=slept.append)
    for _ in range(3):
        rate.wait()
    assert slept == pytest.approx([0.1, 0.2])


def test_run_pool_reraises_unexpected_errors_and_stops() -> None:
    seen: list[int] = []

    def work(i: int) -> None:
        seen.append(i)
        if i == 2:
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_pool(100, work, workers=1, stop=threading.Event())
    assert seen == [0, 1, 2]


# ----------------------------------------------------------------- "already exists" only when Credly says so


@pytest.mark.parametrize(
    "message",
    [DUPLICATE, "validation failed: user ALREADY HAS THIS BADGE", "already has this badge"],
)
def test_duplicate_refusal_is_recognised_case_insensitively(message: str) -> None:
    assert is_duplicate_badge_error(ValidationError(message, status=422))
    as_field_error = ValidationError(
        "Validation failed", errors=[{"attribute": "user", "messages": [message]}], status=422
    )
    assert is_duplicate_badge_error(as_field_error)


@pytest.mark.parametrize("kind", sorted(OTHER_422))
def test_other_documented_422s_are_not_duplicate_refusals(kind: str) -> None:
    assert not is_duplicate_badge_error(ValidationError(OTHER_422[kind], status=422))
    assert not is_duplicate_badge_error(ServerError(DUPLICATE, status=500))


@pytest.mark.parametrize("kind", sorted(OTHER_422))
def test_other_422_fails_with_credlys_message_even_when_an_older_badge_exists(kind: str) -> None:
    client = FakeClient(plan=[kind])
    payload = validate_rows([row(0)])[0]
    client._store(payload)  # an older badge of the same template for that recipient
    result = BadgeIssuer(client).issue(payload)  # type: ignore[arg-type]
    assert result.outcome == "failed"
    assert OTHER_422[kind] in (result.reason or "")
    assert result.badge is None
    assert client.lookups == 0  # not even looked for: the refusal is not about an existing badge


def test_duplicate_worded_422_on_a_template_allowing_duplicates_is_a_failure() -> None:
    client = FakeClient(plan=["dup422"], allow_duplicates=True)
    payload = validate_rows([row(0)])[0]
    client._store(payload)
    result = BadgeIssuer(client).issue(payload)  # type: ignore[arg-type]
    assert result.outcome == "failed"
    assert "already has this badge" in (result.reason or "")
    assert "allows duplicate badges" in (result.reason or "")


# ----------------------------------------------------------------- the right badge for the right row


def test_unknown_outcome_does_not_adopt_an_older_badge() -> None:
    # a template allowing duplicates: the older badge is no proof that this POST took effect
    client = FakeClient(plan=["error"], allow_duplicates=True)
    payload = validate_rows([row(0)])[0]
    client._store(payload)
    result = BadgeIssuer(client).issue(payload)  # type: ignore[arg-type]
    assert (result.outcome, result.badge_id) == ("issued", "b1")
    assert client.posts == 2
    assert len(client.badges) == 2


@pytest.mark.parametrize("check_existing", [False, True])
def test_retry_recognises_its_own_badge_with_if_exists_fail(check_existing: bool) -> None:
    first_try = time.time()
    client = FakeClient(plan=["dup422"])
    payload = validate_rows([row(0)])[0]
    own = client._store(payload, created=now_iso())  # the earlier try's POST, whose answer was lost
    issuer = BadgeIssuer(client, if_exists="fail", since=first_try)  # type: ignore[arg-type]
    result = issuer.issue(payload, check_existing=check_existing)
    assert (result.outcome, result.badge_id) == ("issued", own["id"])
    assert client.posts == (0 if check_existing else 1)


@pytest.mark.parametrize("check_existing", [False, True])
def test_retry_still_fails_on_a_badge_older_than_the_task(check_existing: bool) -> None:
    client = FakeClient(plan=["dup422"])
    payload = validate_rows([row(0)])[0]
    client._store(payload)  # OLD: before the first try
    issuer = BadgeIssuer(client, if_exists="fail", since=time.time())  # type: ignore[arg-type]
    result = issuer.issue(payload, check_existing=check_existing)
    assert result.outcome == "failed"
    assert "a badge already exists: b0" in (result.reason or "")


def test_bulk_retry_reports_the_earlier_trys_badges_as_issued_and_older_ones_as_existing() -> None:
    client = FakeClient()
    payloads = validate_rows([row(i) for i in range(3)])
    client._store(payloads[0])  # before the task
    client._store(payloads[1], created=now_iso())  # by the first try
    report = run_bulk_issue(
        client,  # type: ignore[arg-type]
        payloads,
        workers=2,
        check_existing=True,
        since=time.time() - 1,
    )
    assert report.outcomes == ["already_existed", "issued", "issued"]
    assert report.badge_ids == ["b0", "b1", "b2"]
    assert client.posts == 1


class SlowClient(FakeClient):
    """Records how many POSTs per (template, email) are in flight at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_flight: dict[tuple[str, str], int] = {}
        self.max_in_flight = 0

    def issue_badge(self, **payload: Any) -> dict[str, Any]:
        key = (payload["badge_template_id"], payload["recipient_email"])
        with self.lock:
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight[key])
        try:
            time.sleep(0.005)  # gives other workers the chance to overlap (never asserted on)
            return super().issue_badge(**payload)
        finally:
            with self.lock:
                self.in_flight[key] -= 1


def test_bulk_identical_rows_never_run_together_and_each_gets_its_own_badge() -> None:
    # every answer is lost after the badge was created: each row must find its own badge, in row order
    client = SlowClient(plan=["lost", "drop"] * 12, allow_duplicates=True)
    payloads = validate_rows([row(i % 2) for i in range(12)])  # 6 identical rows for each of 2 recipients
    report = run_bulk_issue(client, payloads, workers=6)  # type: ignore[arg-type]
    assert client.max_in_flight == 1
    assert report.counts()["issued"] == 12
    assert len(client.badges) == 12
    assert len(set(report.badge_ids)) == 12
    for email in ("user0@example.com", "user1@example.com"):
        created = [b["id"] for b in client.badges if b["recipient_email"] == email]
        credited = [report.badge_ids[i] for i, p in enumerate(payloads) if p["recipient_email"] == email]
        assert credited == created  # row order = creation order for the same key


class KeyedIssuer:
    """A fake issuer for :func:`run_bulk`: records the order rows are issued in, per key."""

    recovered = 0

    def __init__(self) -> None:
        self.order: list[int] = []
        self.lock = threading.Lock()
        self.active: set[Hashable] = set()
        self.overlaps = 0

    def key(self, row: Mapping[str, Any]) -> Hashable:
        return row["k"]

    def issue(self, row: Mapping[str, Any], *, check_existing: bool = False) -> IssueResult:
        with self.lock:
            if row["k"] in self.active:
                self.overlaps += 1
            self.active.add(row["k"])
        time.sleep(0.002)
        with self.lock:
            self.active.discard(row["k"])
            self.order.append(row["i"])
        return IssueResult("issued", {"id": f"x{row['i']}"})


def test_run_bulk_runs_rows_of_one_key_in_row_order_one_at_a_time() -> None:
    rows = [{"i": i, "k": i % 3} for i in range(30)]
    issuer = KeyedIssuer()
    report = run_bulk(issuer, rows, http=FakeHttp(), limiter=AdaptiveLimiter(8), workers=8)
    assert issuer.overlaps == 0
    for k in range(3):
        assert [i for i in issuer.order if i % 3 == k] == list(range(k, 30, 3))
    assert report.counts()["issued"] == 30


def test_run_bulk_stops_inside_a_chain_of_identical_rows() -> None:
    client = FakeClient(plan=["archived"])
    payloads = validate_rows([row(0)] * 4)
    report = run_bulk_issue(client, payloads, workers=4, max_failures=0)  # type: ignore[arg-type]
    assert report.outcomes == ["failed", "skipped", "skipped", "skipped"]
    assert client.posts == 1
