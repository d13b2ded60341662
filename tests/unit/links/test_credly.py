"""Extra links: "Credly badge" from the task's XCom, "Credly organization" from the task's connection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_credly.get_provider_info import get_provider_info
from airflow_provider_credly.links.credly import CredlyBadgeLink, CredlyOrganizationLink, credly_web_url
from airflow_provider_credly.operators.badges import (
    CredlyIssueBadgeOperator,
    CredlyReplaceBadgeOperator,
    CredlyRevokeBadgeOperator,
)

KEY = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)


@pytest.fixture
def xcom(monkeypatch) -> dict[str, Any]:
    """A fake XCom store (``XCom.get_value``): ``{key: value}`` of the task instance KEY only."""
    from airflow.providers.common.compat.sdk import XCom

    store: dict[str, Any] = {}

    def get_value(cls, *, ti_key, key):
        assert ti_key is KEY
        return store.get(key)

    monkeypatch.setattr(XCom, "get_value", classmethod(get_value))
    return store


def _operator(base_url: str = "https://api.credly.com/v1", org: str | None = "org-1") -> Any:
    client = SimpleNamespace(http=SimpleNamespace(base_url=base_url), organization_id=org)
    return SimpleNamespace(hook=SimpleNamespace(client=client))


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.credly.com/v1", "https://www.credly.com"),
        ("https://sandbox-api.credly.com/v1", "https://sandbox.credly.com"),
        ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765"),
    ],
)
def test_web_url(api, web):
    assert credly_web_url(api) == web


def test_badge_link_prefers_the_url_in_xcom(xcom):
    xcom["return_value"] = {
        "outcome": "issued",
        "id": "b-1",
        "url": "https://www.credly.com/badges/b-1/public",
    }
    assert CredlyBadgeLink().get_link(_operator(), ti_key=KEY) == "https://www.credly.com/badges/b-1/public"


def test_badge_link_of_a_replace_is_the_new_badge(xcom):
    xcom["return_value"] = {"badge_id": "old", "outcome": "replaced", "new_badge_id": "new-1"}
    link = CredlyBadgeLink().get_link(_operator("https://sandbox-api.credly.com/v1"), ti_key=KEY)
    assert link == "https://sandbox.credly.com/badges/new-1"


def test_badge_link_is_empty_without_a_badge(xcom):
    assert CredlyBadgeLink().get_link(_operator(), ti_key=KEY) == ""
    xcom["return_value"] = "not a mapping"
    assert CredlyBadgeLink().get_link(_operator(), ti_key=KEY) == ""


def test_organization_link(xcom):
    assert (
        CredlyOrganizationLink().get_link(_operator(), ti_key=KEY)
        == "https://www.credly.com/mgmt/organizations/org-1"
    )
    assert CredlyOrganizationLink().get_link(_operator(org=None), ti_key=KEY) == ""


def test_organization_link_is_empty_when_the_connection_cannot_be_read(xcom):
    class Broken:
        @property
        def client(self):
            raise ValueError("connection 'x' has no authorization token")

    assert CredlyOrganizationLink().get_link(SimpleNamespace(hook=Broken()), ti_key=KEY) == ""


def test_links_are_on_the_operators_and_registered():
    names = lambda cls: sorted(link.name for link in cls.operator_extra_links)  # noqa: E731
    assert names(CredlyIssueBadgeOperator) == ["Credly badge", "Credly organization"]
    assert names(CredlyReplaceBadgeOperator) == ["Credly badge", "Credly organization"]
    assert names(CredlyRevokeBadgeOperator) == ["Credly organization"]
    assert get_provider_info()["extra-links"] == [
        "airflow_provider_credly.links.credly.CredlyBadgeLink",
        "airflow_provider_credly.links.credly.CredlyOrganizationLink",
    ]
