"""Employee sync on a 10,000-employee organization over real HTTP to the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_credly.operators.employees import CredlyEmployeeSyncOperator
from airflow_provider_credly.sync.employees import DeleteGuardError
from tests.conftest import connect_credly

pytestmark = pytest.mark.integration

MANAGED = ("email", "first_name", "last_name", "external_id", "team", "department")


class TI:
    try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed = (key, value)


def writes(emulator: Any) -> int:
    routes = emulator.stats()["by_route"]
    return sum(n for route, n in routes.items() if route.split()[0] in ("POST", "PUT", "DELETE"))


@pytest.fixture
def org(credly_emulator_factory, monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = credly_emulator_factory(badges=10, employees=10_000)
    connect_credly(monkeypatch, emulator, backoff_max=None)
    return emulator


def build_roster(employees: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every employee but 300 leavers, 500 team changes, an HR number for those without one, 200 hires."""
    roster, updates, invites = [], 0, 0
    for j, emp in enumerate(employees):
        if j % 33 == 0 and j < 33 * 300:
            continue
        row = {k: emp.get(k) for k in MANAGED}
        changed = False
        if not row["external_id"]:
            row["external_id"], changed = f"HR-{j:05d}", True
        if j % 20 == 1:
            row["team"], changed = "Reorganised", True
        updates += changed
        invites += emp["employee_state"] == "created"
        roster.append(row)
    for i in range(200):
        roster.append(
            {
                "email": f"hire{i}@example.com",
                "first_name": "New",
                "last_name": f"Hire{i}",
                "external_id": f"NEW-{i}",
            }
        )
    return roster, {"create": 200, "update": updates, "delete": 300, "invite": invites + 200}


def sync(**kwargs: Any) -> dict[str, Any]:
    op = CredlyEmployeeSyncOperator(task_id="sync", workers=4, invite_states=["created"], **kwargs)
    return op.execute({"ti": TI()})  # type: ignore[arg-type]


def test_sync_10000_employees(org: Any) -> None:
    employees = org.state.employees
    assert len(employees) == 10_000
    roster, expected = build_roster(employees)

    # Dry run: the plan, and not a single write.
    plan = sync(roster=roster, delete_missing=True, dry_run=True)["plan"]
    assert {k: plan[k] for k in expected} == expected
    assert plan["unchanged"] == 10_000 - 300 - expected["update"]
    assert writes(org) == 0

    # A truncated roster trips the delete guard before any write.
    with pytest.raises(DeleteGuardError, match="would delete"):
        sync(roster=roster[:5000], delete_missing=True)
    assert writes(org) == 0

    result = sync(roster=roster, delete_missing=True)
    assert result["failed"] == 0
    assert {a: result[a]["count"] for a in ("created", "updated", "deleted", "invited")} == {
        "created": 200,
        "updated": expected["update"],
        "deleted": 300,
        "invited": expected["invite"],
    }
    assert result["created"]["truncated"] is False
    assert len(result["updated"]["ids"]) == min(1000, expected["update"])
    after = {e["email"].lower(): e for e in org.state.employees}
    assert len(after) == 10_000 - 300 + 200
    assert after["hire0@example.com"]["employee_state"] == "pending"  # invited
    assert sum(e["team"] == "Reorganised" for e in after.values()) == len(
        [r for r in roster if r.get("team") == "Reorganised"]
    )
    assert not any(e["employee_state"] == "created" for e in after.values())

    # Running it again changes nothing.
    again = sync(roster=roster, delete_missing=True)["plan"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)
