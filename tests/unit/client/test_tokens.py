from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_credly.client.auth import BasicTokenAuth
from airflow_provider_credly.client.tokens import TOKEN_MASK, mask_token, token_status

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_mask_token_replaces_only_the_value():
    record = {"id": "t1", "token": "s3cret-value", "created_at": "2026-01-01T00:00:00Z"}
    assert mask_token(record) == {**record, "token": TOKEN_MASK}
    assert record["token"] == "s3cret-value"  # a copy
    assert mask_token({"id": "t2"}) == {"id": "t2"}


def test_token_status_counts_days_from_created_at():
    record = {
        "id": "t1",
        "created_at": "2026-11-01T00:00:00.000Z",
        "read_enabled": True,
        "write_enabled": False,
        "delete_enabled": False,
    }
    status = token_status(record, now=NOW)
    assert status.days_left == 150.0
    assert status.expires_at == datetime(2027, 4, 30, tzinfo=UTC)
    assert status.read_only and status.permissions == ("read",)
    assert status.describe() == "expires in 150.0 day(s) (2027-04-30); permissions: read-only"
    assert "token" not in status.to_dict()
    assert token_status(record, lifetime_days=20, now=NOW).describe().startswith("expired 10.0 day(s) ago")


@pytest.mark.parametrize("created", [None, "", "yesterday"])
def test_token_status_needs_a_created_at(created):
    with pytest.raises(ValueError, match="no readable created_at"):
        token_status({"id": "t", "created_at": created}, now=NOW)


def test_lifetime_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        token_status({"created_at": "2026-01-01T00:00:00Z"}, lifetime_days=0)


def test_basic_auth_recognises_its_own_token_only():
    auth = BasicTokenAuth("abc-123")
    assert auth.matches("abc-123") and auth.matches(" abc-123 ")
    assert not auth.matches("abc-124")
    assert not auth.matches(None) and not auth.matches("") and not auth.matches(TOKEN_MASK)
