"""Operators that revoke, delete and replace Credly badges (re-exported by
:mod:`airflow_provider_credly.operators.badges`).

The work itself lives in :mod:`airflow_provider_credly.actions.credly`; these classes only turn Airflow
arguments and context into calls and results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_credly.actions.credly import delete_badge, replace_badge, revoke_badge
from airflow_provider_credly.actions.results import ActionResult, actions_xcom, failure_errors, run_actions
from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.payloads import PayloadError, build_replace_payload
from airflow_provider_credly.links.credly import CredlyBadgeLink, CredlyOrganizationLink
from airflow_provider_credly.operators.base import (
    CredlyBaseOperator,
    load_rows,
    report_or_raise,
    run_date,
    try_number,
)
from airflow_provider_credly.operators.failures import all_permanent, is_permanent

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CredlyDeleteBadgeOperator", "CredlyReplaceBadgeOperator", "CredlyRevokeBadgeOperator"]


class _BadgeActionOperator(CredlyBaseOperator):
    """Shared by revoke and delete: ids from a list or a query, a few workers, a failure threshold."""

    template_fields: Sequence[str] = (
        "badge_ids",
        "sql",
        "sql_conn_id",
        "parameters",
        "follow_replacement",
        "workers",
        "max_failures",
        "max_xcom_rows",
        "credly_conn_id",
    )
    template_fields_renderers = {"sql": "sql", "badge_ids": "json", "parameters": "json"}
    template_ext: Sequence[str] = (".sql",)
    typed_fields = {
        "follow_replacement": "flag",
        "workers": "int",
        "max_failures": "int",
        "max_xcom_rows": "int",
    }

    def __init__(
        self,
        *,
        badge_ids: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        follow_replacement: bool = False,
        workers: int = 4,
        max_failures: int = 0,
        max_xcom_rows: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.badge_ids = badge_ids
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.follow_replacement = follow_replacement
        self.workers = workers
        self.max_failures = max_failures
        self.max_xcom_rows = max_xcom_rows

    def load_targets(self) -> list[dict[str, Any]]:
        """``[{"badge_id": ..., maybe "reason": ...}]`` from ``badge_ids`` or the query's rows."""
        raw = load_rows(
            self.badge_ids,
            sql=self.sql,
            sql_conn_id=self.sql_conn_id,
            parameters=self.parameters,
            column_mapping=None,
            what="badge_ids",
        )
        targets, bad = [], []
        for i, item in enumerate(raw):
            target = dict(item) if isinstance(item, Mapping) else {"badge_id": item}
            if not isinstance(target.get("badge_id"), str) or not target["badge_id"].strip():
                bad.append(i)
            else:
                target["badge_id"] = target["badge_id"].strip()
                targets.append(target)
        if bad:
            shown = ", ".join(str(i) for i in bad[:50])
            raise ValueError(f"{len(bad)} item(s) have no badge_id (a non-empty string): rows {shown}")
        return targets

    def act(self, client: CredlyClient, target: Mapping[str, Any]) -> ActionResult:
        """Act on one badge."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        targets = self.load_targets()
        self.check(targets)
        client = self.hook.client  # built once, before the worker threads share it
        results = run_actions(
            [t["badge_id"] for t in targets],
            lambda i: self.act(client, targets[i]),
            workers=self.workers,
            max_failures=self.max_failures,
        )
        xcom = actions_xcom(results, self.max_xcom_rows)
        self.log.info("Done: %s", xcom["counts"])
        for r in results:
            if not r.ok:
                self.log.warning("Badge %s: %s", r.badge_id, r.detail)
        return report_or_raise(
            context,
            xcom,
            failed=xcom["failed"],
            max_failures=self.max_failures,
            permanent=all_permanent(failure_errors(results)),
            message=f"{xcom['failed']} of {len(results)} badge(s) failed: see the log",
        )

    def check(self, targets: list[dict[str, Any]]) -> None:
        """Validate inputs before any call."""


class CredlyRevokeBadgeOperator(_BadgeActionOperator):
    """Revoke one or many badges. Already revoked badges are done (``already_revoked``); a replaced badge
    fails naming its current version unless ``follow_replacement=True`` (then the current version is
    revoked).

    :param badge_ids: one id, a list of ids, or dicts ``{"badge_id", "reason"}`` (templated; XCom works).
    :param sql: or a query returning a ``badge_id`` column (and optionally ``reason``).
    :param sql_conn_id: the query's common.sql connection.
    :param parameters: query parameters.
    :param reason: revocation reason (for rows without their own).
    :param suppress_revoke_notification_email: do not email the earner.
    :param follow_replacement: revoke the current version of a replaced badge.
    :param workers: concurrent requests.
    :param max_failures: the task fails when more badges fail.
    :param credly_conn_id: the Credly connection.

    XCom: ``{"counts": {"revoked": n, "already_revoked": n, "failed": n}, "failed", "total",
    "results": [{"badge_id", "outcome", "acted_on", "new_badge_id", "detail"}], "results_truncated"}``.
    """

    template_fields: Sequence[str] = (
        *_BadgeActionOperator.template_fields,
        "reason",
        "suppress_revoke_notification_email",
    )
    typed_fields = {**_BadgeActionOperator.typed_fields, "suppress_revoke_notification_email": "flag"}

    def __init__(
        self,
        *,
        reason: str | None = None,
        suppress_revoke_notification_email: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reason = reason
        self.suppress_revoke_notification_email = suppress_revoke_notification_email

    def check(self, targets: list[dict[str, Any]]) -> None:
        missing = [t["badge_id"] for t in targets if not str(t.get("reason") or self.reason or "").strip()]
        if missing:
            raise ValueError(
                f"a revocation reason is required; none for {len(missing)} badge(s): {missing[:20]}"
            )

    def act(self, client: CredlyClient, target: Mapping[str, Any]) -> ActionResult:
        return revoke_badge(
            client,
            target["badge_id"],
            str(target.get("reason") or self.reason),
            suppress_revoke_notification_email=self.suppress_revoke_notification_email,
            follow_replacement=self.follow_replacement,
        )


class CredlyDeleteBadgeOperator(_BadgeActionOperator):
    """Delete one or many badges for good. A badge not found (404) counts as already deleted; a replaced
    badge fails naming its current version unless ``follow_replacement=True`` (then the current version,
    and with it every previous version, is deleted).

    :param badge_ids: one id or a list of ids (templated; XCom works).
    :param sql: or a query returning a ``badge_id`` column.
    :param sql_conn_id: the query's common.sql connection.
    :param parameters: query parameters.
    :param follow_replacement: delete the current version of a replaced badge.
    :param workers: concurrent requests.
    :param max_failures: the task fails when more badges fail.
    :param credly_conn_id: the Credly connection.

    XCom: as :class:`CredlyRevokeBadgeOperator`, outcomes ``deleted``, ``already_deleted``, ``failed``.
    """

    def act(self, client: CredlyClient, target: Mapping[str, Any]) -> ActionResult:
        return delete_badge(client, target["badge_id"], follow_replacement=self.follow_replacement)


class CredlyReplaceBadgeOperator(CredlyBaseOperator):
    """Replace a badge with a new one (Credly creates the new badge and links the old one to it).

    Retry-safe: a replace whose outcome is unknown is checked by sending it again (Credly answers "already
    been replaced" if the first took effect), and on a task retry that answer is taken as the earlier try's
    replacement. ``follow_replacement=True`` replaces the current version of an already replaced badge.

    :param badge_id: the badge to replace.
    :param badge_template_id: the new badge's template (required by Credly).
    :param issued_at: the new badge's issue time; default the run's logical date.
    :param fields: other documented replace fields (``recipient_email`` for pending badges,
        ``issued_to_first_name``, ``expires_at``, ``notification_message``, ``evidence``...).
    :param follow_replacement: replace the current version when the badge was already replaced.
    :param credly_conn_id: the Credly connection.

    XCom: ``{"badge_id", "outcome": "replaced"|"already_replaced", "acted_on", "new_badge_id"}``.
    """

    template_fields: Sequence[str] = (
        "badge_id",
        "badge_template_id",
        "issued_at",
        "fields",
        "follow_replacement",
        "credly_conn_id",
    )
    typed_fields = {"follow_replacement": "flag"}
    template_fields_renderers = {"fields": "json"}
    operator_extra_links = (CredlyBadgeLink(), CredlyOrganizationLink())

    def __init__(
        self,
        *,
        badge_id: str,
        badge_template_id: str,
        issued_at: Any = None,
        fields: dict[str, Any] | None = None,
        follow_replacement: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.badge_id = badge_id
        self.badge_template_id = badge_template_id
        self.issued_at = issued_at
        self.fields = fields
        self.follow_replacement = follow_replacement

    def execute(self, context: Context) -> dict[str, Any]:
        if not str(self.badge_id or "").strip():
            raise ValueError("badge_id is required")
        body = {
            **(self.fields or {}),
            "badge_template_id": self.badge_template_id,
            "issued_at": self.issued_at or run_date(context),
        }
        try:
            build_replace_payload(body)
        except PayloadError as exc:
            raise ValueError(str(exc)) from None
        result = replace_badge(
            self.hook.client,
            str(self.badge_id).strip(),
            body,
            follow_replacement=self.follow_replacement,
            retried=try_number(context) > 1,
        )
        if not result.ok:
            message = f"badge {self.badge_id} not replaced: {result.detail}"
            if result.error is not None and is_permanent(result.error):  # a 401, a replaced badge: final
                raise AirflowFailException(message) from result.error
            raise AirflowException(message)
        self.log.info("Badge %s: %s -> %s", result.badge_id, result.outcome, result.new_badge_id)
        return result.as_dict()
