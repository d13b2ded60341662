"""Extra links of the Credly operators, shown as buttons on a task instance in the Airflow UI.

* "Credly badge": the badge a single issue or a replace produced; its URL from the task's XCom (``url``),
  else the badge's public page built from its id (``new_badge_id`` of a replace).
* "Credly organization": the management pages of the organization the task acted on.

Airflow 3 computes a link when the task finishes, in the worker, with the operator that ran (and stores it
in XCom), so the operator's hook is already built. No link carries the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_credly.client.credly import CredlyClient

__all__ = ["CredlyBadgeLink", "CredlyOrganizationLink", "credly_web_url"]


def credly_web_url(api_base_url: str) -> str:
    """Credly's web site for an API base URL: ``https://api.credly.com/v1`` -> ``https://www.credly.com``,
    ``https://sandbox-api.credly.com/v1`` -> ``https://sandbox.credly.com``; any other host (an emulator,
    a proxy) is its own web site."""
    parts = urlsplit(api_base_url)
    host = parts.hostname or ""
    if host.startswith("sandbox-api."):
        return f"https://sandbox.{host.removeprefix('sandbox-api.')}"
    if host.startswith("api."):
        return f"https://www.{host.removeprefix('api.')}"
    return f"{parts.scheme}://{parts.netloc}"


def _client(operator: Any) -> CredlyClient | None:
    """The operator's Credly client (operators: ``hook``, transfers: ``credly_hook``), or ``None``, also
    when its connection cannot be read (no link rather than an error in the task's log)."""
    for attr in ("hook", "credly_hook"):
        try:
            client = getattr(getattr(operator, attr, None), "client", None)
        except Exception:
            return None
        if client is not None:
            return client  # type: ignore[no-any-return]
    return None


def _return_value(ti_key: TaskInstanceKey) -> Any:
    from airflow.providers.common.compat.sdk import XCom

    return XCom.get_value(ti_key=ti_key, key="return_value")


class CredlyBadgeLink(BaseOperatorLink):
    """The badge of a single issue or replace (``""`` when the task returned none)."""

    name = "Credly badge"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        value = _return_value(ti_key)
        if not isinstance(value, Mapping):
            return ""
        if value.get("url"):
            return str(value["url"])
        badge_id = value.get("new_badge_id") or value.get("id")
        client = _client(operator) if badge_id else None
        if client is None:
            return ""
        return f"{credly_web_url(client.http.base_url)}/badges/{badge_id}"


class CredlyOrganizationLink(BaseOperatorLink):
    """The organization the task acted on (``""`` when its connection names none)."""

    name = "Credly organization"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        client = _client(operator)
        if client is None or not client.organization_id:
            return ""
        return f"{credly_web_url(client.http.base_url)}/mgmt/organizations/{client.organization_id}"
