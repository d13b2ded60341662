"""Operators that award and revoke Canvas Credentials (Badgr) assertions.

The work lives in :mod:`airflow_provider_credly.issuing.canvas`; these classes turn Airflow arguments and
context into calls and small XCom results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_credly.actions.canvas import revoke_assertions
from airflow_provider_credly.actions.results import actions_xcom, failure_errors
from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook
from airflow_provider_credly.issuing.bulk import IfExists
from airflow_provider_credly.issuing.canvas import (
    CanvasAssertionIssuer,
    run_bulk_award,
    validate_assertion_rows,
)
from airflow_provider_credly.operators.base import (
    BULK_TEMPLATE_FIELDS,
    BulkIssueMixin,
    CanvasCredentialsBaseOperator,
    as_list,
    first_try_bound,
    issue_xcom,
    report_or_raise,
    run_date,
    try_number,
)
from airflow_provider_credly.operators.failures import all_permanent

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CanvasCredentialsBulkIssueAssertionsOperator",
    "CanvasCredentialsIssueAssertionOperator",
    "CanvasCredentialsRevokeAssertionsOperator",
]


class _AwardLineage(CanvasCredentialsBaseOperator):
    """Lineage of the award operators: the assertions of each badge class awarded (set in ``execute``)."""

    _badge_classes: list[str] = []

    def lineage_paths(self) -> list[str]:
        return [f"badgeclasses/{b}/assertions" for b in self._badge_classes] or super().lineage_paths()


class CanvasCredentialsIssueAssertionOperator(_AwardLineage):
    """Award a badge class to one recipient, exactly once across retries.

    The award is sent with ``allowDuplicateAwards: false`` (unless ``allow_duplicate_awards``), so a
    repeated request cannot award twice; a "previous award exists" refusal resolves to the recipient's
    existing assertion: ``issued`` when it was created since the task's first try (on a retry the DAG
    run's start stands for it, see :func:`~.base.first_try_bound`), else it already existed. Any other
    400 fails the task with the server's message. Every argument is templated.

    :param badge_class_id: the badge class entityId.
    :param recipient_identity: the recipient's e-mail (or other identifier, see ``recipient_type``).
    :param recipient_type: ``email`` (default), ``openBadgeId``, ``telephone`` or ``url``.
    :param hashed: hash the recipient identity in the assertion (default ``True``).
    :param issued_on: award time (datetime or ISO string); default the run's logical date.
    :param expires: expiry (datetime or ISO string).
    :param narrative: Markdown narrative.
    :param evidence: list of evidence objects (``url``, ``narrative``...).
    :param extensions: Open Badges extensions.
    :param if_exists: ``"return"`` (default) reports an existing award; ``"fail"`` fails the task.
    :param allow_duplicate_awards: award again even when the recipient holds the badge (an attempt with an
        unknown outcome is then checked by listing before it is repeated; on task retries too).
    :param notify: e-mail the recipient about the award (Badgr's ``notify``); ``None`` (default) leaves it
        to the server. Bulk awards take ``notify`` as a row field or in ``defaults``.
    :param canvas_credentials_conn_id: the Canvas Credentials connection.

    XCom: ``{"outcome": "issued"|"already_existed", "id", "open_badge_id", "badgeclass", "issuer",
    "recipient", "issued_on", "revoked"}``.
    """

    template_fields: Sequence[str] = (
        "badge_class_id",
        "recipient_identity",
        "recipient_type",
        "issued_on",
        "expires",
        "narrative",
        "evidence",
        "extensions",
        "if_exists",
        "hashed",
        "allow_duplicate_awards",
        "notify",
        "canvas_credentials_conn_id",
    )
    typed_fields = {"hashed": "flag", "allow_duplicate_awards": "flag", "notify": "flag"}
    template_fields_renderers = {"evidence": "json", "extensions": "json"}

    def __init__(
        self,
        *,
        badge_class_id: str,
        recipient_identity: str,
        recipient_type: str = "email",
        hashed: bool = True,
        issued_on: Any = None,
        expires: Any = None,
        narrative: str | None = None,
        evidence: list[dict[str, Any]] | None = None,
        extensions: dict[str, Any] | None = None,
        if_exists: IfExists = "return",
        allow_duplicate_awards: bool = False,
        notify: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.notify = notify
        self.badge_class_id = badge_class_id
        self.recipient_identity = recipient_identity
        self.recipient_type = recipient_type
        self.hashed = hashed
        self.issued_on = issued_on
        self.expires = expires
        self.narrative = narrative
        self.evidence = evidence
        self.extensions = extensions
        self.if_exists = if_exists
        self.allow_duplicate_awards = allow_duplicate_awards

    def execute(self, context: Context) -> dict[str, Any]:
        row = {
            "badgeclass": self.badge_class_id,
            "recipient_identity": self.recipient_identity,
            "recipient_type": self.recipient_type,
            "hashed": self.hashed,
            "issued_on": self.issued_on or run_date(context),
            "expires": self.expires or None,
            "narrative": self.narrative or None,
            "evidence": self.evidence or None,
            "extensions": self.extensions or None,
            "notify": self.notify,
        }
        (fields,) = validate_assertion_rows([row])
        self._badge_classes = [fields["badgeclass"]]
        issuer = CanvasAssertionIssuer(
            self.hook.client,
            if_exists=self.if_exists,
            allow_duplicate_awards=self.allow_duplicate_awards,
            since=first_try_bound(context),
        )
        check = self.allow_duplicate_awards and try_number(context) > 1
        result = issuer.issue(fields, check_existing=check)
        return issue_xcom(self, result, kind="Assertion", what=f"assertion of {self.badge_class_id!r}")


class CanvasCredentialsBulkIssueAssertionsOperator(BulkIssueMixin[CanvasCredentialsHook], _AwardLineage):
    """Award badge classes to many recipients, each exactly once, from a list of rows or a SQL query.

    Every row is validated before the first call; all invalid rows are reported at once. Rows are sent by
    ``workers`` threads sharing one HTTP session and one OAuth token; concurrency halves on 429.

    :param rows: list of dicts (``recipient_identity`` or ``recipient_email``, and optionally
        ``badgeclass``, ``issued_on``, ``expires``, ``narrative``, ``evidence``, ``extensions``,
        ``recipient_type``, ``hashed``); literal, XCom or JSON string.
    :param sql: or a query whose rows are the awards (needs ``sql_conn_id``).
    :param sql_conn_id: any common.sql connection.
    :param parameters: query parameters.
    :param column_mapping: ``{field: column or row key}``; only mapped fields are used.
    :param badge_class_id: the badge class of rows that name none.
    :param defaults: fields applied to every row unless the row sets them; ``issued_on`` defaults to the
        run's logical date.
    :param if_exists: ``"return"`` (existing award = ``already_existed``) or ``"fail"`` (= ``failed``);
        an award created since the task's first try is this task's (``issued``).
    :param allow_duplicate_awards: award again to recipients who hold the badge (then, on task retries,
        existing awards are looked up first).
    :param workers: concurrent requests at most.
    :param max_requests_per_second: optional client-side pacing.
    :param max_failures: the task fails when more rows fail; it stops taking new rows once exceeded.
    :param report_conn_id: optional common.sql connection for the per-row report table.
    :param report_table: the report table (created if missing; one row per input row and try: run, row index,
        outcome, ``assertion_id``, reason, ``badgeclass``, ``recipient_identity``, time).
    :param max_xcom_rows: cap on the rows listed in XCom (failed rows first); the report table has all.
    :param canvas_credentials_conn_id: the Canvas Credentials connection.

    XCom: ``{"issued", "already_existed", "failed", "skipped", "total", "throttled",
    "rows": [[row_index, outcome, assertion_id_or_reason], ...], "rows_truncated"}``.
    """

    report_id_column = "assertion_id"
    report_row_columns = (
        ("badgeclass", "VARCHAR(64)", "badgeclass"),
        ("recipient_identity", "VARCHAR(320)", "recipient_identity"),
    )

    template_fields: Sequence[str] = (
        *BULK_TEMPLATE_FIELDS,
        "badge_class_id",
        "allow_duplicate_awards",
        "canvas_credentials_conn_id",
    )
    typed_fields = {**BulkIssueMixin.typed_fields, "allow_duplicate_awards": "flag"}

    def __init__(
        self, *, badge_class_id: str | None = None, allow_duplicate_awards: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.badge_class_id = badge_class_id
        self.allow_duplicate_awards = allow_duplicate_awards

    def execute(self, context: Context) -> dict[str, Any]:
        defaults = {
            "issued_on": run_date(context),
            "badgeclass": self.badge_class_id,
            **(self.defaults or {}),
        }
        rows = validate_assertion_rows(self.load_rows(), defaults)
        self._badge_classes = sorted({str(r["badgeclass"]) for r in rows})
        tries = try_number(context)
        check = self.allow_duplicate_awards and tries > 1
        self.log.info("Awarding %d assertion(s) with %d worker(s)", len(rows), self.workers)
        return self.run_bulk_rows(
            context,
            run_bulk_award,
            rows,
            noun="assertion",
            write_report=self.report_writer(context, rows, tries),
            allow_duplicate_awards=self.allow_duplicate_awards,
            check_existing=check,
            since=first_try_bound(context),
        )


class CanvasCredentialsRevokeAssertionsOperator(CanvasCredentialsBaseOperator):
    """Revoke assertions (``DELETE /v2/assertions/{id}`` with ``revocation_reason``).

    An assertion that is already revoked counts as done, so a retried task succeeds.

    :param assertion_ids: entityIds (list, JSON string, XCom or one id).
    :param reason: the revocation reason shown to verifiers.
    :param workers: concurrent requests.
    :param max_failures: the task fails when more ids fail.
    :param canvas_credentials_conn_id: the Canvas Credentials connection.

    XCom: ``{"counts": {outcome: n}, "failed", "total", "results": [...], "results_truncated"}``.
    """

    template_fields: Sequence[str] = (
        "assertion_ids",
        "reason",
        "workers",
        "max_failures",
        "canvas_credentials_conn_id",
    )
    typed_fields = {"workers": "int", "max_failures": "int"}
    template_fields_renderers = {"assertion_ids": "json"}

    def __init__(
        self,
        *,
        assertion_ids: Any,
        reason: str | None = None,
        workers: int = 4,
        max_failures: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.assertion_ids = assertion_ids
        self.reason = reason
        self.workers = workers
        self.max_failures = max_failures

    def execute(self, context: Context) -> dict[str, Any]:
        ids = [str(i).strip() for i in as_list(self.assertion_ids, "assertion_ids")]
        bad = [n for n, i in enumerate(ids) if not i]
        if bad:
            raise ValueError(f"assertion_ids has empty id(s) at position(s) {bad}")
        results = revoke_assertions(
            self.hook.client, ids, self.reason, workers=self.workers, max_failures=self.max_failures
        )
        xcom = actions_xcom(results)
        self.log.info("Revoke: %s", xcom["counts"])
        return report_or_raise(
            context,
            xcom,
            failed=xcom["failed"],
            max_failures=self.max_failures,
            permanent=all_permanent(failure_errors(results)),
            message=f"{xcom['failed']} of {len(ids)} assertion(s) not revoked: {xcom['results']}",
        )
