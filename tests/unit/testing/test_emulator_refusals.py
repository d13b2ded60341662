"""The Credly emulator's issue refusals used by the attribution tests."""

from __future__ import annotations

import pytest

from airflow_provider_credly.testing.emulator.errors import (
    MSG_EXPIRES_BEFORE_ISSUED,
    MSG_TEMPLATE_ARCHIVED,
    EmulatorRefusal,
)
from airflow_provider_credly.testing.emulator.state import EmulatorState

FIELDS = {
    "recipient_email": "r@example.org",
    "issued_to_first_name": "R",
    "issued_to_last_name": "S",
    "issued_at": "2026-01-01 00:00:00 +0000",
}


def test_archived_template_refuses_new_badges_until_unarchived() -> None:
    state = EmulatorState(badges=5, employees=1)
    tpl = state.templates[1]
    state.archive_template(tpl.id)
    with pytest.raises(EmulatorRefusal) as info:
        state.issue_badge(FIELDS, badge_template_id=tpl.id)
    assert info.value.status == 422
    assert info.value.payload["data"]["message"] == f"Validation failed: {MSG_TEMPLATE_ARCHIVED}"
    state.archive_template(tpl.id, archived=False)
    assert state.issue_badge(FIELDS, badge_template_id=tpl.id)["badge_template"]["state"] == "active"


def test_expires_at_before_issued_at_is_refused() -> None:
    state = EmulatorState(badges=5, employees=1)
    with pytest.raises(EmulatorRefusal) as info:
        state.issue_badge(
            FIELDS, badge_template_id=state.templates[1].id, expires_at="2025-01-01 00:00:00 +0000"
        )
    assert info.value.status == 422
    assert (
        info.value.payload["data"]["message"] == f"Validation failed: Expires at {MSG_EXPIRES_BEFORE_ISSUED}"
    )
