"""Every documented constraint is checked before the first request; the valid forms reach Credly intact.

Real loopback HTTP against the emulator: a refused payload, filter or sort leaves ``requests_total`` at 0.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_credly.client import CredlyClient, RetryPolicy
from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator

pytestmark = pytest.mark.integration

ISSUED = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
def emu():
    with run_emulator(EmulatorState(seed=7, badges=40, employees=12)) as emulator:
        yield emulator


def _client(emu: Any) -> CredlyClient:
    retry = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.02)
    return CredlyClient.create(emu.token, emu.org_id, base_url=emu.base_url, retry=retry)


def _issue_fields(emu: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "recipient_email": "ada@example.com",
        "issued_to_first_name": "Ada",
        "issued_to_last_name": "Lovelace",
        "badge_template_id": emu.state.templates[0].id,
        "issued_at": ISSUED,
        **overrides,
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda c, e: c.issue_badge(**_issue_fields(e, issued_to_last_name="   ")),
        lambda c, e: c.issue_badge(**_issue_fields(e, recipient_email="a" * 65 + "@example.com")),
        lambda c, e: c.issue_badge(**_issue_fields(e, expires_at=ISSUED)),
        lambda c, e: c.issue_badge(**_issue_fields(e, evidence=[{"type": "IdEvidence", "title": "x"}])),
        lambda c, e: c.replace_badge("b1", badge_template_id=" ", issued_at=ISSUED),
        lambda c, e: c.replace_badge("b1", badge_template_id="t", issued_at=ISSUED, expires_at=ISSUED),
        lambda c, e: c.create_employee(email="e@example.com", first_name="\t", last_name="L"),
        lambda c, e: c.update_employee("e@example.com", last_name=" "),
        lambda c, e: list(c.iter_badges(sort="--issued_at")),
        lambda c, e: list(c.iter_badges("query:::x")),
        lambda c, e: list(c.iter_badges("state::pending|state::accepted")),
        lambda c, e: list(c.iter_employees(sort="-nme")),
    ],
)
def test_refused_before_any_request(emu, call):
    client = _client(emu)
    with pytest.raises(ValueError):
        call(client, emu)
    assert emu.state.stats.requests_total == 0


def test_employee_sort_minus_name_reaches_credly(emu):
    employees = list(_client(emu).iter_employees(sort="-name"))
    names = [f"{e['first_name']} {e['last_name']}".lower() for e in employees]
    assert len(names) == 12
    assert names == sorted(names, reverse=True)


def test_replace_sends_a_blank_expires_at(emu):
    client = _client(emu)
    old = client.issue_badge(**_issue_fields(emu, expires_at=ISSUED + timedelta(days=30)))
    assert old["expires_at"] is not None
    new = client.replace_badge(
        old["id"], badge_template_id=old["badge_template"]["id"], issued_at=ISSUED, expires_at=""
    )
    assert new["replaces_badge_id"] == old["id"]
    assert new["expires_at"] is None  # the emulator's templates have no default expiry
