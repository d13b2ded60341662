"""Make Credly Workforce employees match a roster. Pure Python: no Airflow import.

:func:`plan_sync` compares the roster with one listing pass over the current employees, streaming: the
roster is indexed once (by key and by email), each listed employee is compared as it arrives, so time is
linear in roster + employees and memory is the roster plus the planned changes. :func:`execute_plan` then
applies the plan (creates, updates of changed fields only, deletes, invitations) with a few workers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_credly.client.concurrency import run_pool
from airflow_provider_credly.client.credly import CredlyClient
from airflow_provider_credly.client.errors import ApiError, ValidationError
from airflow_provider_credly.client.payloads import (
    EMPLOYEE_FIELDS,
    INVITATION_STATUSES,
    PayloadError,
    build_employee_payload,
)
from airflow_provider_credly.issuing.bulk import InvalidRowsError

__all__ = [
    "ACTIONS",
    "DeleteGuardError",
    "SyncKey",
    "SyncPlan",
    "SyncResult",
    "execute_plan",
    "plan_sync",
    "validate_roster",
]

log = logging.getLogger(__name__)

SyncKey = Literal["external_id", "email"]
ACTIONS = ("created", "updated", "deleted", "invited")
INVITE_CHUNK = 500
_MAX_WARNINGS = 100


class DeleteGuardError(ValueError):
    """The sync would delete a larger share of the employees than allowed; nothing was written."""


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _key_of(row: Mapping[str, Any], key: SyncKey) -> str:
    value = _norm(row.get(key))
    return value.lower() if key == "email" else value


def validate_roster(rows: Iterable[Mapping[str, Any]], key: SyncKey) -> list[dict[str, Any]]:
    """Validated create payloads, one per roster row; raises :class:`InvalidRowsError` naming every bad
    row (missing fields, bad email, missing or duplicate key).
    """
    if key not in ("external_id", "email"):
        raise ValueError(f"key must be 'external_id' or 'email', got {key!r}")
    out: list[dict[str, Any]] = []
    problems: dict[int, list[str]] = {}
    seen: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            problems[i] = [f"expected a mapping of employee fields, got {type(row).__name__}"]
            continue
        row_problems: list[str] = []
        try:
            payload = build_employee_payload({k: v for k, v in row.items() if v is not None}, create=True)
        except PayloadError as exc:
            row_problems.extend(exc.problems)
            payload = {}
        k = _key_of(row, key)
        if not k:
            row_problems.append(f"missing key field {key}")
        elif k in seen:
            row_problems.append(f"duplicate {key} {k!r} (also row {seen[k]})")
        else:
            seen[k] = i
        email = _key_of(row, "email")
        if key != "email" and email:
            if email in seen_email:
                row_problems.append(f"duplicate email (also row {seen_email[email]})")
            else:
                seen_email[email] = i
        if row_problems:
            problems[i] = row_problems
        else:
            out.append(payload)
    if problems:
        raise InvalidRowsError(problems, len(out) + len(problems))
    return out


@dataclass
class SyncPlan:
    """What a sync will do.

    :ivar creates: roster indexes of employees to create.
    :ivar updates: ``(employee email, {changed field: new value}, key)``.
    :ivar deletes: ``(employee email, key)`` of employees missing from the roster.
    :ivar invites: keys of roster employees to invite.
    """

    key: SyncKey
    roster: list[dict[str, Any]]
    existing: int = 0
    unchanged: int = 0
    creates: list[int] = field(default_factory=list)
    updates: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    invites: list[str] = field(default_factory=list)
    invite_states: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    def warn(self, message: str) -> None:
        """Keep a warning (the first hundred are kept, all are counted)."""
        self.warning_count += 1
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(message)

    def summary(self) -> dict[str, int]:
        """Counts of the plan."""
        return {
            "roster": len(self.roster),
            "existing": self.existing,
            "create": len(self.creates),
            "update": len(self.updates),
            "delete": len(self.deletes),
            "unchanged": self.unchanged,
            "invite": len(self.invites),
            "warnings": self.warning_count,
        }


def plan_sync(
    roster: Sequence[Mapping[str, Any]],
    current: Iterable[Mapping[str, Any]],
    *,
    key: SyncKey = "external_id",
    delete_missing: bool = False,
    invite_states: Sequence[str] | None = None,
    max_delete_fraction: float = 0.1,
) -> SyncPlan:
    """Compare a validated roster (see :func:`validate_roster`) with the current employees.

    Roster rows are matched by ``key``, then by email (an employee created without an external id gets it
    set). Only fields the roster row carries are compared; ``None`` means "not managed".

    :param current: the current employees, streamed (e.g. ``client.iter_employees()``).
    :param delete_missing: delete employees missing from the roster.
    :param invite_states: invite roster employees in these states (``created``, ``pending``, ``rejected``;
        new employees are ``created``).
    :param max_delete_fraction: refuse (:class:`DeleteGuardError`) a plan deleting a larger share of the
        current employees.
    :raises DeleteGuardError: before anything is written.
    """
    states = list(invite_states or ())
    wrong = [s for s in states if s not in INVITATION_STATUSES]
    if wrong:
        raise ValueError(f"invite_states accepts {', '.join(INVITATION_STATUSES)}; got {', '.join(wrong)}")
    plan = SyncPlan(
        key=key, roster=[r if isinstance(r, dict) else dict(r) for r in roster], invite_states=states
    )
    by_key = {_key_of(r, key): i for i, r in enumerate(plan.roster)}
    by_email = {_key_of(r, "email"): i for i, r in enumerate(plan.roster)} if key != "email" else by_key
    matched = bytearray(len(plan.roster))
    for emp in current:
        plan.existing += 1
        email = _norm(emp.get("email"))
        i = by_key.get(_key_of(emp, key)) if _key_of(emp, key) else None
        if i is None:
            i = by_email.get(email.lower())
        if i is None or matched[i]:
            if i is not None:
                plan.warn(f"employee {email} matches roster row {i}, already matched: left alone")
            elif delete_missing:
                plan.deletes.append((email, _norm(emp.get(key))))
            continue
        matched[i] = 1
        row = plan.roster[i]
        changes = {
            f: row[f]
            for f in EMPLOYEE_FIELDS
            if f != "email" and row.get(f) is not None and _norm(row[f]) != _norm(emp.get(f))
        }
        if email.lower() != _key_of(row, "email"):
            plan.warn(f"employee {email}: roster email {row.get('email')} differs; Credly cannot change it")
        if changes:
            plan.updates.append((email, changes, _key_of(row, key)))
        else:
            plan.unchanged += 1
        if str(emp.get("employee_state")) in states:
            plan.invites.append(_norm(row.get(key)))
    for i, done in enumerate(matched):
        if not done:
            plan.creates.append(i)
            if "created" in states:
                plan.invites.append(_norm(plan.roster[i].get(key)))
    if plan.existing and len(plan.deletes) > max_delete_fraction * plan.existing:
        raise DeleteGuardError(
            f"refusing to sync: it would delete {len(plan.deletes)} of {plan.existing} employees "
            f"({len(plan.deletes) / plan.existing:.1%} > max_delete_fraction {max_delete_fraction:.1%}); "
            "is the roster complete? Nothing was written."
        )
    return plan


@dataclass
class SyncResult:
    """What was done: per action the keys (emails for deletes) that succeeded, and failures."""

    done: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def to_xcom(self, plan: SyncPlan, *, dry_run: bool, max_ids: int = 1000) -> dict[str, Any]:
        """Counts and ids per action (each id list capped at ``max_ids``), failures, the plan's counts."""
        out: dict[str, Any] = {
            "dry_run": dry_run,
            "counts": {action: len(ids) for action, ids in self.done.items()},
            "failed": len(self.failures),
            "plan": plan.summary(),
        }
        for action, ids in self.done.items():
            out[action] = {"count": len(ids), "ids": ids[:max_ids], "truncated": len(ids) > max_ids}
        out["failures"] = [list(f) for f in self.failures[:max_ids]]
        out["warnings"] = plan.warnings[:20]
        return out


def execute_plan(
    client: CredlyClient,
    plan: SyncPlan,
    *,
    workers: int = 4,
    max_failures: int = 0,
    stop: threading.Event | None = None,
) -> SyncResult:
    """Apply ``plan``: creates, updates and deletes on ``workers`` threads, then invitations in chunks.

    Stops taking new actions once failures exceed ``max_failures``. A create that Credly rejects because
    the email is taken after an unknown outcome is adopted when the employee now exists.
    """
    result = SyncResult()
    stop = stop or threading.Event()
    lock = threading.Lock()
    tasks: list[tuple[str, Callable[[], None], str]] = []
    for i in plan.creates:
        row = plan.roster[i]
        tasks.append(("created", _creator(client, row), _norm(row.get(plan.key))))
    for email, changes, k in plan.updates:
        tasks.append(("updated", _updater(client, email, changes), k or email))
    for email, k in plan.deletes:
        tasks.append(("deleted", _deleter(client, email), k or email))

    def work(n: int) -> None:
        action, call, ident = tasks[n]
        try:
            call()
        except ApiError as exc:
            with lock:
                result.failures.append((action, ident, str(exc)))
                if len(result.failures) > max_failures:
                    stop.set()
            return
        with lock:
            result.done[action].append(ident)

    run_pool(len(tasks), work, workers=workers, stop=stop)
    if len(result.failures) <= max_failures and not stop.is_set():
        failed = {ident for action, ident, _ in result.failures if action == "created"}
        invites = [k for k in plan.invites if k not in failed]
        if invites:
            _invite(client, plan, invites, result)
    return result


def _creator(client: CredlyClient, row: Mapping[str, Any]) -> Callable[[], None]:
    def call() -> None:
        try:
            client.create_employee(**{k: v for k, v in row.items() if v is not None})
        except ValidationError as exc:
            # An earlier attempt may have created it (the POST is retried on unknown outcomes).
            try:
                found = client.get_employee(str(row["email"]))
            except ApiError:
                raise exc from None
            if _norm(found.get("email")).lower() != _norm(row["email"]).lower():
                raise
            log.info("employee %s already exists: adopted", row["email"])

    return call


def _updater(client: CredlyClient, email: str, changes: Mapping[str, Any]) -> Callable[[], None]:
    def call() -> None:
        client.update_employee(email, **changes)

    return call


def _deleter(client: CredlyClient, email: str) -> Callable[[], None]:
    def call() -> None:
        try:
            client.delete_employee(email)
        except ApiError as exc:
            if exc.status != 404:
                raise

    return call


def _invite(client: CredlyClient, plan: SyncPlan, invites: list[str], result: SyncResult) -> None:
    for start in range(0, len(invites), INVITE_CHUNK):
        chunk = invites[start : start + INVITE_CHUNK]
        try:
            client.send_invitations(chunk, list_type=plan.key, statuses=plan.invite_states)
        except ApiError as exc:
            result.failures.extend(("invited", k, str(exc)) for k in chunk)
            continue
        result.done["invited"].extend(chunk)
