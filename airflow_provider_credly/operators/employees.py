"""CredlyEmployeeSyncOperator: make Credly Workforce employees match a roster."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_credly.operators.base import CredlyBaseOperator, as_list, load_rows, report_or_raise
from airflow_provider_credly.sync.employees import (
    SyncKey,
    SyncResult,
    execute_plan,
    plan_sync,
    validate_roster,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CredlyEmployeeSyncOperator"]


class CredlyEmployeeSyncOperator(CredlyBaseOperator):
    """Make the organization's Workforce employees match a roster.

    One listing pass over the current employees is compared with the roster (keyed by ``external_id`` or
    ``email``; an employee without the key is matched by email). New employees are created, changed
    fields (only those the roster carries) are updated, employees missing from the roster are deleted
    when ``delete_missing``, and employees in ``invite_states`` are invited. The whole plan is computed
    and checked first: nothing is written when the roster is invalid or the delete guard trips.

    :param roster: list of employee dicts (literal, XCom or a JSON string).
    :param sql: or a query returning the roster (needs ``sql_conn_id``).
    :param sql_conn_id: any common.sql connection.
    :param parameters: query parameters.
    :param column_mapping: ``{employee field: column or key}``; only mapped fields are used.
    :param key: ``"external_id"`` (default) or ``"email"``.
    :param delete_missing: delete employees that are not in the roster.
    :param max_delete_fraction: refuse a sync deleting more than this share of the current employees
        (default 0.1), e.g. after an empty or truncated roster.
    :param invite_states: send invitations to roster employees in these states (``created``, ``pending``,
        ``rejected``); new employees are ``created``.
    :param dry_run: compute and log the plan, write nothing.
    :param workers: concurrent requests.
    :param max_failures: the task fails when more actions fail.
    :param max_xcom_ids: cap on each id list in XCom.
    :param credly_conn_id: the Credly connection.

    XCom: ``{"dry_run", "counts": {"created", "updated", "deleted", "invited"}, "failed",
    "plan": {"roster", "existing", "create", "update", "delete", "unchanged", "invite", "warnings"},
    "created"|"updated"|"deleted"|"invited": {"count", "ids", "truncated"},
    "failures": [[action, id, reason]], "warnings": [...]}``.
    """

    template_fields: Sequence[str] = (
        "roster",
        "sql",
        "sql_conn_id",
        "parameters",
        "column_mapping",
        "key",
        "delete_missing",
        "max_delete_fraction",
        "invite_states",
        "dry_run_mode",
        "workers",
        "max_failures",
        "max_xcom_ids",
        "credly_conn_id",
    )
    template_fields_renderers = {
        "sql": "sql",
        "roster": "json",
        "column_mapping": "json",
        "parameters": "json",
    }
    template_ext: Sequence[str] = (".sql",)
    lineage_collection = "employees"
    typed_fields = {
        "delete_missing": "flag",
        "max_delete_fraction": "float",
        "dry_run_mode": "flag",
        "workers": "int",
        "max_failures": "int",
        "max_xcom_ids": "int",
    }

    def __init__(
        self,
        *,
        roster: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        column_mapping: Mapping[str, str] | None = None,
        key: SyncKey = "external_id",
        delete_missing: bool = False,
        max_delete_fraction: float = 0.1,
        invite_states: Sequence[str] | None = None,
        dry_run: bool = False,
        workers: int = 4,
        max_failures: int = 0,
        max_xcom_ids: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.roster = roster
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.column_mapping = column_mapping
        self.key = key
        self.delete_missing = delete_missing
        self.max_delete_fraction = max_delete_fraction
        self.invite_states = invite_states
        self.dry_run_mode = dry_run  # BaseOperator.dry_run is a method
        self.workers = workers
        self.max_failures = max_failures
        self.max_xcom_ids = max_xcom_ids
        self._stop = threading.Event()

    def load_roster(self) -> list[dict[str, Any]]:
        """The roster rows as employee-field dicts."""
        return load_rows(
            self.roster,
            sql=self.sql,
            sql_conn_id=self.sql_conn_id,
            parameters=self.parameters,
            column_mapping=self.column_mapping,
            what="roster",
        )

    def execute(self, context: Context) -> dict[str, Any]:
        if self.max_delete_fraction is None or not 0 <= self.max_delete_fraction <= 1:
            raise ValueError("max_delete_fraction must be between 0 and 1")
        roster = validate_roster(self.load_roster(), self.key)
        self._stop = threading.Event()  # fresh per try: the operator object may be reused across tries
        client = self.hook.client
        plan = plan_sync(
            roster,
            client.iter_employees(),
            key=self.key,
            delete_missing=bool(self.delete_missing),
            invite_states=as_list(self.invite_states, "invite_states"),
            max_delete_fraction=self.max_delete_fraction,
        )
        self.log.info("Plan%s: %s", " (dry run)" if self.dry_run_mode else "", plan.summary())
        for warning in plan.warnings[:20]:
            self.log.warning("%s", warning)
        if self.dry_run_mode:
            return SyncResult().to_xcom(plan, dry_run=True, max_ids=self.max_xcom_ids)
        result = execute_plan(
            client, plan, workers=self.workers, max_failures=self.max_failures, stop=self._stop
        )
        xcom = result.to_xcom(plan, dry_run=False, max_ids=self.max_xcom_ids)
        self.log.info("Done: %s", xcom["counts"])
        for action, ident, reason in result.failures[:50]:
            self.log.warning("%s %s failed: %s", action, ident, reason)
        planned = len(plan.creates) + len(plan.updates) + len(plan.deletes)
        applied = sum(xcom[a]["count"] for a in ("created", "updated", "deleted"))
        return report_or_raise(
            context,
            xcom,
            failed=len(result.failures),
            max_failures=self.max_failures,
            # changes neither applied nor failed were not attempted (the run stopped)
            incomplete=applied + sum(1 for f in result.failures if f[0] != "invited") < planned,
            message=f"employee sync incomplete: {len(result.failures)} failure(s), "
            f"{applied} of {planned} change(s) applied",
        )

    def on_kill(self) -> None:
        self._stop.set()
