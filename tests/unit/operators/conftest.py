"""Operator unit tests: a Credly connection (from the environment) to a host served by ``responses``."""

from __future__ import annotations

import pytest

from tests.conftest import set_connection

BASE = "https://api.credly.test/v1"
ORG = "org-1"


@pytest.fixture(autouse=True)
def credly_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "credly_default",
        conn_type="credly",
        host=BASE,
        password="secret-token-123",
        extra={"organization_id": ORG, "max_retries": 0, "backoff_base": 0},
    )
