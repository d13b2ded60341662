"""Revoke, delete and replace operators against the emulator: its exact 422s map to the documented outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.operators.badges import (
    CredlyDeleteBadgeOperator,
    CredlyReplaceBadgeOperator,
    CredlyRevokeBadgeOperator,
)

pytestmark = pytest.mark.integration


class TI:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed = (key, value)


def active_badges(emulator: Any, n: int) -> list[dict[str, Any]]:
    found = [b for b in emulator.state.find_badges() if b["state"] in ("pending", "accepted")]
    return found[:n]


def replace(emulator: Any, badge: dict[str, Any], try_number: int = 1, **kw: Any) -> dict[str, Any]:
    op = CredlyReplaceBadgeOperator(
        task_id="replace", badge_id=badge["id"], badge_template_id=badge["badge_template"]["id"], **kw
    )
    return op.execute({"ti": TI(try_number), "logical_date": None})  # type: ignore[arg-type]


def test_replace_revoke_delete_chain(credly_conn) -> None:
    emulator = credly_conn
    first, other = active_badges(emulator, 2)
    replaced = replace(emulator, first)
    assert replaced["outcome"] == "replaced"
    current = replaced["new_badge_id"]
    assert emulator.state.get_badge(current)["replaces_badge_id"] == first["id"]

    # Replacing the old version again: refused on a first try, adopted on a retry.
    with pytest.raises(AirflowException, match=f"current version is {current}"):
        replace(emulator, first)
    assert replace(emulator, first, try_number=2) == {
        "badge_id": first["id"],
        "outcome": "already_replaced",
        "acted_on": first["id"],
        "new_badge_id": current,
    }

    # Revoke: the replaced id fails naming the current version unless followed; a revoked one is done.
    revoke = CredlyRevokeBadgeOperator(
        task_id="revoke", badge_ids=[first["id"], other["id"]], reason="Withdrawn", max_failures=1
    )
    result = revoke.execute({"ti": TI()})  # type: ignore[arg-type]
    assert result["counts"] == {"failed": 1, "revoked": 1}
    assert result["results"][0]["new_badge_id"] == current
    followed = CredlyRevokeBadgeOperator(
        task_id="revoke", badge_ids=[first["id"], other["id"]], reason="Withdrawn", follow_replacement=True
    ).execute({"ti": TI()})  # type: ignore[arg-type]
    assert followed["counts"] == {"revoked": 1, "already_revoked": 1}
    assert emulator.state.get_badge(current)["state"] == "revoked"

    # Delete: the replaced id names the current version; followed, the whole chain goes; again = done.
    with pytest.raises(AirflowException):
        CredlyDeleteBadgeOperator(task_id="delete", badge_ids=first["id"]).execute({"ti": TI()})  # type: ignore[arg-type]
    deleted = CredlyDeleteBadgeOperator(
        task_id="delete", badge_ids=[first["id"]], follow_replacement=True
    ).execute({"ti": TI()})  # type: ignore[arg-type]
    assert deleted["results"] == [{"badge_id": first["id"], "outcome": "deleted", "acted_on": current}]
    assert emulator.state.get_badge(first["id"]) is None
    assert emulator.state.get_badge(current) is None
    again = CredlyDeleteBadgeOperator(task_id="delete", badge_ids=[first["id"], current]).execute(
        {"ti": TI()}
    )  # type: ignore[arg-type]
    assert again["counts"] == {"already_deleted": 2}
