"""Unit tests of the employee sync plan and its execution (fake client, no HTTP)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_credly.client.errors import NotFoundError, ServerError, ValidationError
from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.sync.employees import (
    DeleteGuardError,
    execute_plan,
    plan_sync,
    validate_roster,
)


def person(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"p{i}@example.com",
        "first_name": f"F{i}",
        "last_name": f"L{i}",
        "external_id": f"X{i}",
        "team": "Data",
        **extra,
    }


def current(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"id{i}", "employee_state": "accepted", **person(i), **extra}


def test_validate_roster_reports_all_bad_rows() -> None:
    rows = [
        person(0),
        {"email": "bad", "first_name": "A"},
        person(2, external_id=None),
        person(0, email="z@x.io"),
    ]
    with pytest.raises(InvalidRowsError) as info:
        validate_roster(rows, "external_id")
    assert sorted(info.value.problems) == [1, 2, 3]
    assert any("duplicate external_id" in p for p in info.value.problems[3])
    assert any("missing key field external_id" in p for p in info.value.problems[2])


def test_plan_creates_updates_changed_fields_only_deletes_and_invites() -> None:
    roster = validate_roster(
        [person(0), person(1, team="Ops"), person(2, department=None), person(3)], "external_id"
    )
    emps = [
        current(0),
        current(1),
        current(2, department="Finance"),  # the roster does not manage department
        current(9),
        current(10, employee_state="created"),
    ]
    plan = plan_sync(
        roster,
        iter(emps),
        key="external_id",
        delete_missing=True,
        invite_states=["created"],
        max_delete_fraction=0.5,
    )
    assert plan.summary()["create"] == 1
    assert plan.creates == [3]
    assert plan.updates == [("p1@example.com", {"team": "Ops"}, "X1")]
    assert plan.unchanged == 2
    assert sorted(k for _, k in plan.deletes) == ["X10", "X9"]
    assert plan.invites == ["X3"]
    assert plan.existing == 5


def test_plan_matches_by_email_when_the_employee_has_no_external_id() -> None:
    roster = validate_roster([person(0)], "external_id")
    plan = plan_sync(roster, [current(0, external_id=None)], key="external_id", delete_missing=True)
    assert plan.updates == [("p0@example.com", {"external_id": "X0"}, "X0")]
    assert not plan.creates
    assert not plan.deletes


def test_plan_keyed_by_email_is_case_insensitive() -> None:
    roster = validate_roster([person(0, email="P0@Example.com", external_id=None)], "email")
    plan = plan_sync(roster, [current(0)], key="email")
    assert plan.unchanged == 1
    assert not plan.creates


def test_delete_guard_trips_on_a_truncated_roster() -> None:
    roster = validate_roster([person(i) for i in range(5)], "external_id")
    emps = [current(i) for i in range(100)]
    with pytest.raises(DeleteGuardError, match="would delete 95 of 100"):
        plan_sync(roster, emps, delete_missing=True, max_delete_fraction=0.1)
    plan = plan_sync(roster, emps, delete_missing=False)
    assert not plan.deletes


def test_invite_states_are_checked() -> None:
    with pytest.raises(ValueError, match="invite_states"):
        plan_sync([], [], invite_states=["accepted"])


class FakeClient:
    def __init__(self, fail: set[str] | None = None, taken: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or set()
        self.taken = taken or set()
        self.lock = threading.Lock()

    def create_employee(self, **row: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(("create", row["email"]))
        if row["email"] in self.taken:
            raise ValidationError("Validation failed: Email has already been taken", status=422)
        if row["email"] in self.fail:
            raise ServerError("boom", status=500)
        return row

    def get_employee(self, key: str) -> dict[str, Any]:
        if key in self.taken:
            return {"email": key}
        raise NotFoundError("nope", status=404)

    def update_employee(self, key: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(("update", key))
        return {}

    def delete_employee(self, key: str) -> None:
        with self.lock:
            self.calls.append(("delete", key))
        if key in self.fail:
            raise NotFoundError("gone", status=404)

    def send_invitations(self, ids: list[str], *, list_type: str, statuses: list[str]) -> dict[str, Any]:
        self.calls.append(("invite", ",".join(ids)))
        assert list_type == "external_id"
        assert statuses == ["created"]
        return {}


def test_execute_plan_applies_every_action_and_adopts_taken_emails() -> None:
    roster = validate_roster([person(0), person(1, team="Ops"), person(2)], "external_id")
    plan = plan_sync(
        roster,
        [current(1), current(7)],
        delete_missing=True,
        invite_states=["created"],
        max_delete_fraction=1,
    )
    client = FakeClient(taken={"p2@example.com"}, fail={"p7@example.com"})
    result = execute_plan(client, plan, workers=2)  # type: ignore[arg-type]
    assert sorted(result.done["created"]) == ["X0", "X2"]
    assert result.done["updated"] == ["X1"]
    assert result.done["deleted"] == ["X7"]  # a 404 on delete is done
    assert sorted(result.done["invited"]) == ["X0", "X2"]
    assert not result.failures
    xcom = result.to_xcom(plan, dry_run=False, max_ids=1)
    assert xcom["created"] == {"count": 2, "ids": xcom["created"]["ids"], "truncated": True}
    assert len(xcom["created"]["ids"]) == 1
    assert xcom["plan"]["create"] == 2
    assert xcom["failed"] == 0


def test_execute_plan_records_failures_and_skips_invitations() -> None:
    roster = validate_roster([person(0), person(1)], "external_id")
    plan = plan_sync(roster, [], invite_states=["created"])
    client = FakeClient(fail={"p0@example.com", "p1@example.com"})
    result = execute_plan(client, plan, workers=1, max_failures=5)  # type: ignore[arg-type]
    assert [f[0] for f in result.failures] == ["created", "created"]
    assert not result.done["invited"]
    assert ("invite", "X0,X1") not in client.calls
