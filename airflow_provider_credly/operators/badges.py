"""Operators that issue, replace, revoke and delete Credly badges.

The issuing operators are here, their work in :mod:`airflow_provider_credly.issuing.credly`; the replace, revoke
and delete operators live in :mod:`airflow_provider_credly.operators.badge_actions` and are re-exported.
These classes only turn Airflow arguments and context into calls and results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_credly.client.payloads import build_issue_payload
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.issuing.bulk import IfExists
from airflow_provider_credly.issuing.credly import BadgeIssuer, run_bulk_issue, validate_rows
from airflow_provider_credly.links.credly import CredlyBadgeLink, CredlyOrganizationLink
from airflow_provider_credly.operators.badge_actions import (
    CredlyDeleteBadgeOperator,
    CredlyReplaceBadgeOperator,
    CredlyRevokeBadgeOperator,
)
from airflow_provider_credly.operators.base import (
    BULK_TEMPLATE_FIELDS,
    BulkIssueMixin,
    CredlyBaseOperator,
    first_try_bound,
    issue_xcom,
    run_date,
    try_number,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CredlyBulkIssueBadgesOperator",
    "CredlyDeleteBadgeOperator",
    "CredlyIssueBadgeOperator",
    "CredlyReplaceBadgeOperator",
    "CredlyRevokeBadgeOperator",
    "run_date",
    "try_number",
]


class CredlyIssueBadgeOperator(CredlyBaseOperator):
    """Issue one badge, exactly once across retries.

    Every argument is templated. Credly's duplicate-badge 422, or a badge found for the same template and
    recipient email (and ``issuer_earner_id`` when given) after an attempt whose outcome is unknown or on a
    task retry, resolves to that badge: ``issued`` when it was created since the task's first try (on a
    retry the DAG run's start stands for it, see :func:`~.base.first_try_bound`), else it already
    existed. Any other 422 fails the task with Credly's message.

    :param recipient_email: the earner's email.
    :param issued_to_first_name: the earner's first name.
    :param issued_to_last_name: the earner's last name.
    :param badge_template_id: the badge template.
    :param issued_at: issue time (datetime or string); default the run's logical date (or
        ``data_interval_end``/now when the run has none).
    :param expires_at: expiry (datetime/string), ``False`` for "never"; default the template's.
    :param issuer_earner_id: your own id for the earner.
    :param issued_to_middle_name: the earner's middle name.
    :param locale: notification language (``en``, ``fr``...).
    :param suppress_badge_notification_email: do not email the earner.
    :param evidence: list of evidence objects.
    :param extra_fields: any other documented field (``country_name``, ``state_or_province``,
        ``issuer_earner_group``...).
    :param if_exists: ``"return"`` (default) reports an existing badge; ``"fail"`` fails the task.
    :param check_existing: look for an existing badge before issuing: ``None`` (default) on task retries
        only, ``True`` always, ``False`` never.
    :param credly_conn_id: the Credly connection.

    Before the first ``POST`` the connection's token is looked up: a token without ``write_enabled``
    fails the task with that reason, and one with fewer than ``expiry_warn_days`` left logs a warning.

    XCom: ``{"outcome": "issued"|"already_existed", "id", "state", "url", "badge_template_id",
    "recipient_email", "issuer_earner_id", "location"}`` (``location``: the issue response's ``Location``
    header, ``None`` when the badge was found rather than created by this call).
    """

    template_fields: Sequence[str] = (
        "recipient_email",
        "issued_to_first_name",
        "issued_to_last_name",
        "badge_template_id",
        "issued_at",
        "expires_at",
        "issuer_earner_id",
        "issued_to_middle_name",
        "locale",
        "suppress_badge_notification_email",
        "evidence",
        "extra_fields",
        "if_exists",
        "check_existing",
        "credly_conn_id",
    )
    typed_fields = {"suppress_badge_notification_email": "flag", "check_existing": "flag"}
    template_fields_renderers = {"evidence": "json", "extra_fields": "json"}
    operator_extra_links = (CredlyBadgeLink(), CredlyOrganizationLink())

    def __init__(
        self,
        *,
        recipient_email: str,
        issued_to_first_name: str,
        issued_to_last_name: str,
        badge_template_id: str,
        issued_at: Any = None,
        expires_at: Any = None,
        issuer_earner_id: str | None = None,
        issued_to_middle_name: str | None = None,
        locale: str | None = None,
        suppress_badge_notification_email: bool | None = None,
        evidence: list[dict[str, Any]] | None = None,
        extra_fields: dict[str, Any] | None = None,
        if_exists: IfExists = "return",
        check_existing: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recipient_email = recipient_email
        self.issued_to_first_name = issued_to_first_name
        self.issued_to_last_name = issued_to_last_name
        self.badge_template_id = badge_template_id
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.issuer_earner_id = issuer_earner_id
        self.issued_to_middle_name = issued_to_middle_name
        self.locale = locale
        self.suppress_badge_notification_email = suppress_badge_notification_email
        self.evidence = evidence
        self.extra_fields = extra_fields
        self.if_exists = if_exists
        self.check_existing = check_existing

    def build_payload(self, context: Context | Mapping[str, Any]) -> dict[str, Any]:
        """The validated issue payload (``ValueError`` naming every problem)."""
        fields = {
            **(self.extra_fields or {}),
            "recipient_email": self.recipient_email,
            "issued_to_first_name": self.issued_to_first_name,
            "issued_to_last_name": self.issued_to_last_name,
            "badge_template_id": self.badge_template_id,
            "issued_at": self.issued_at or run_date(context),
            "expires_at": self.expires_at,
            "issuer_earner_id": self.issuer_earner_id or None,
            "issued_to_middle_name": self.issued_to_middle_name or None,
            "locale": self.locale or None,
            "suppress_badge_notification_email": self.suppress_badge_notification_email,
            "evidence": self.evidence,
        }
        return build_issue_payload(fields)

    def execute(self, context: Context) -> dict[str, Any]:
        payload = self.build_payload(context)
        self.check_token(require="write")
        issuer = BadgeIssuer(self.hook.client, if_exists=self.if_exists, since=first_try_bound(context))
        check = try_number(context) > 1 if self.check_existing is None else self.check_existing
        result = issuer.issue(payload, check_existing=check)
        return issue_xcom(self, result, kind="Badge", what=f"badge for {payload['recipient_email']!r}")


class CredlyBulkIssueBadgesOperator(BulkIssueMixin[CredlyHook], CredlyBaseOperator):
    """Issue many badges, each exactly once, from a list of rows or a SQL query.

    Every row is validated before the first call; all invalid rows are reported at once. Rows are issued by
    ``workers`` threads sharing one HTTP session; concurrency halves when Credly answers 429 (the client
    also waits for ``Retry-After``). On a task retry the badges of the involved templates are read first
    (one pass) so rows issued by an earlier try are not issued again; they are reported ``issued`` (badges
    created since the task's first try, see :func:`~.base.first_try_bound`), older badges
    ``already_existed``. Rows with the same template and recipient run one at a time, in row order.

    :param rows: list of dicts of badge fields (literal, XCom or a JSON string).
    :param sql: or a query whose rows are the badges (needs ``sql_conn_id``).
    :param sql_conn_id: any common.sql connection (PostgreSQL, DuckDB, Snowflake...).
    :param parameters: query parameters.
    :param column_mapping: ``{badge field: column or row key}``; only mapped fields are used.
    :param defaults: fields applied to every row unless the row sets them (e.g. ``badge_template_id``);
        ``issued_at`` defaults to the run's logical date.
    :param if_exists: ``"return"`` (existing badge = ``already_existed``) or ``"fail"`` (= ``failed``).
    :param check_existing: read existing badges first: ``None`` (default) on task retries only.
    :param workers: concurrent requests at most.
    :param max_requests_per_second: optional client-side pacing under a known rate limit.
    :param max_failures: the task fails when more rows fail; it stops taking new rows once exceeded.
    :param report_conn_id: optional common.sql connection for the per-row report table.
    :param report_table: the report table (created if missing; one row per input row and try).
    :param max_xcom_rows: cap on the rows listed in XCom (failed rows first); the report table has all.
    :param credly_conn_id: the Credly connection.

    XCom: ``{"issued", "already_existed", "failed", "skipped", "total", "throttled",
    "rows": [[row_index, outcome, badge_id_or_reason], ...], "rows_truncated"}``. When the task fails the
    same value is pushed under the key ``report``.
    """

    report_row_columns = (
        ("badge_template_id", "VARCHAR(64)", "badge_template_id"),
        ("recipient_email", "VARCHAR(320)", "recipient_email"),
        ("issuer_earner_id", "VARCHAR(250)", "issuer_earner_id"),
    )
    template_fields: Sequence[str] = (*BULK_TEMPLATE_FIELDS, "check_existing", "credly_conn_id")
    typed_fields = {**BulkIssueMixin.typed_fields, "check_existing": "flag"}

    def __init__(self, *, check_existing: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_existing = check_existing

    def execute(self, context: Context) -> dict[str, Any]:
        tries = try_number(context)
        payloads = validate_rows(self.load_rows(), {"issued_at": run_date(context), **(self.defaults or {})})
        check = tries > 1 if self.check_existing is None else self.check_existing
        self.check_token(require="write")
        self.log.info(
            "Issuing %d badge(s) with %d worker(s) (check existing: %s)", len(payloads), self.workers, check
        )
        return self.run_bulk_rows(
            context,
            run_bulk_issue,
            payloads,
            noun="badge",
            check_existing=check,
            since=first_try_bound(context),
            write_report=self.report_writer(context, payloads, tries),
        )
