"""Unit tests of CredlyEmployeeSyncOperator with HTTP served by ``responses``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator
from airflow_provider_credly.sync.employees import DeleteGuardError
from tests.unit.operators.conftest import BASE, ORG
from tests.unit.operators.test_badges import ctx

EMPLOYEES = f"{BASE}/organizations/{ORG}/employees"


def emp(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id{i}",
        "email": f"p{i}@example.com",
        "first_name": f"F{i}",
        "last_name": f"L{i}",
        "external_id": f"X{i}",
        "team": "Data",
        "employee_state": "pending",
        **extra,
    }


def roster_row(i: int, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in emp(i, **extra).items() if k not in ("id", "employee_state")}


def list_employees(*emps: dict[str, Any]) -> None:
    responses.get(EMPLOYEES, json={"data": list(emps), "metadata": {"next_page_url": None}})


@responses.activate
def test_sync_creates_updates_deletes_invites_and_reports() -> None:
    list_employees(emp(0), emp(1), emp(2), *(emp(i) for i in range(10, 20)))
    create = responses.post(EMPLOYEES, json={"data": emp(3)}, status=201)
    update = responses.put(f"{EMPLOYEES}/p1@example.com", json={"data": emp(1)})
    delete = responses.delete(f"{EMPLOYEES}/p2@example.com", status=204)
    invite = responses.post(f"{EMPLOYEES}/send_invitations", json={"data": {"resend_start": "x"}})
    roster = [
        roster_row(0),
        roster_row(1, team="Ops"),
        roster_row(3),
        *(roster_row(i) for i in range(10, 20)),
    ]
    op = CredlyEmployeeSyncOperator(
        task_id="sync",
        roster=roster,
        delete_missing=True,
        invite_states=["created", "pending"],
        max_delete_fraction=0.1,
    )
    xcom = op.execute(ctx())
    assert xcom["plan"] == {
        "roster": 13,
        "existing": 13,
        "create": 1,
        "update": 1,
        "delete": 1,
        "unchanged": 11,
        "invite": 13,
        "warnings": 0,
    }
    assert xcom["created"] == {"count": 1, "ids": ["X3"], "truncated": False}
    assert xcom["updated"]["ids"] == ["X1"]
    assert xcom["deleted"]["ids"] == ["X2"]
    assert xcom["invited"]["count"] == 13
    assert xcom["failed"] == 0
    assert json.loads(update.calls[0].request.body) == {"team": "Ops"}
    assert json.loads(create.calls[0].request.body)["email"] == "p3@example.com"
    assert delete.call_count == 1
    body = json.loads(invite.calls[0].request.body)
    assert body["list_type"] == "external_id"
    assert body["statuses"] == ["created", "pending"]


@responses.activate
def test_dry_run_writes_nothing() -> None:
    list_employees(emp(0), emp(1))
    op = CredlyEmployeeSyncOperator(
        task_id="sync", roster=[roster_row(0, team="Ops"), roster_row(5)], dry_run=True
    )
    xcom = op.execute(ctx())
    assert xcom["dry_run"] is True
    assert (xcom["plan"]["create"], xcom["plan"]["update"]) == (1, 1)
    assert xcom["created"]["count"] == 0
    assert {c.request.method for c in responses.calls} == {"GET"}


@responses.activate
def test_delete_guard_refuses_before_any_write() -> None:
    list_employees(*(emp(i) for i in range(10)))
    op = CredlyEmployeeSyncOperator(task_id="sync", roster=[roster_row(0)], delete_missing=True)
    with pytest.raises(DeleteGuardError, match="delete 9 of 10"):
        op.execute(ctx())
    assert {c.request.method for c in responses.calls} == {"GET"}


@responses.activate
def test_invalid_roster_fails_before_any_call() -> None:
    op = CredlyEmployeeSyncOperator(task_id="sync", roster=[roster_row(0), {"email": "x"}, roster_row(0)])
    with pytest.raises(InvalidRowsError) as info:
        op.execute(ctx())
    assert sorted(info.value.problems) == [1, 2]
    assert len(responses.calls) == 0


@responses.activate
def test_failures_fail_the_task_with_the_report() -> None:
    list_employees()
    responses.post(
        EMPLOYEES,
        json={"data": {"message": "Validation failed: External id has already been taken"}},
        status=422,
    )
    responses.get(f"{EMPLOYEES}/p0@example.com", json={"data": {"message": "nope"}}, status=404)
    context = ctx()
    with pytest.raises(AirflowException, match="1 failure"):
        CredlyEmployeeSyncOperator(task_id="sync", roster=[roster_row(0)]).execute(context)
    report = context["ti"].pushed["report"]
    assert report["failures"][0][:2] == ["created", "X0"]
    assert "already been taken" in report["failures"][0][2]


def test_template_fields() -> None:
    assert {"roster", "sql", "dry_run_mode", "credly_conn_id", "max_delete_fraction"} <= set(
        CredlyEmployeeSyncOperator.template_fields
    )


@responses.activate
def test_rendered_string_flags_are_converted_not_truthy() -> None:
    list_employees(*(emp(i) for i in range(10)))
    op = CredlyEmployeeSyncOperator(
        task_id="sync",
        roster=[roster_row(0)],
        delete_missing="False",
        dry_run="true",
        max_delete_fraction="0.5",
    )
    context = ctx()
    op.render_template_fields(context)  # as Airflow does before execute
    xcom = op.execute(context)
    assert xcom["dry_run"] is True
    assert xcom["plan"]["delete"] == 0  # "False" did not turn deletes on
    with pytest.raises(ValueError, match="delete_missing must be true or false"):
        CredlyEmployeeSyncOperator(
            task_id="sync", roster=[roster_row(0)], delete_missing="maybe"
        ).render_template_fields(ctx())
