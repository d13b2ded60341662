"""CredlyHook: turns an Airflow connection into a :class:`CredlyClient`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_credly.client import (
    DEFAULT_BASE_URL,
    ApiError,
    BasicTokenAuth,
    CredlyClient,
    HttpClient,
)
from airflow_provider_credly.hooks.connection import base_url_from_connection, client_settings_from_extra

__all__ = ["CredlyHook"]


class CredlyHook(BaseHook):
    """Interact with the Credly API v1.

    The connection (type ``credly``) holds:

    * ``password``: the organization's authorization token (sent as HTTP Basic user name);
    * ``host``: the API base URL, default ``https://api.credly.com/v1`` (sandbox:
      ``https://sandbox-api.credly.com/v1``);
    * ``extra``: ``organization_id`` and optional ``timeout``, ``connect_timeout``, ``max_retries``,
      ``backoff_base``, ``backoff_max``, ``retry_total_timeout``, ``verify``.

    :param credly_conn_id: the Airflow connection id.
    :param organization_id: act on this organization instead of the connection's ``organization_id``.
    :param pool_size: HTTP connections kept open (raise it for concurrent bulk work).
    """

    conn_name_attr = "credly_conn_id"
    default_conn_name = "credly_default"
    conn_type = "credly"
    hook_name = "Credly"

    def __init__(
        self,
        credly_conn_id: str = default_conn_name,
        *,
        organization_id: str | None = None,
        pool_size: int = 16,
    ) -> None:
        super().__init__()
        self.credly_conn_id = credly_conn_id
        self._organization_id = organization_id
        self.pool_size = pool_size

    def __repr__(self) -> str:
        return f"CredlyHook(credly_conn_id={self.credly_conn_id!r})"

    @cached_property
    def client(self) -> CredlyClient:
        """The API client built from the connection (created once per hook)."""
        conn = self.get_connection(self.credly_conn_id)
        token = (conn.password or "").strip()
        if not token:
            raise ValueError(
                f"connection {self.credly_conn_id!r} has no authorization token: put it in the password field"
            )
        mask_secret(token)
        extra = conn.extra_dejson or {}
        organization_id = self._organization_id or extra.get("organization_id") or None
        http = HttpClient(
            base_url_from_connection(conn.host, conn.port, DEFAULT_BASE_URL),
            auth=BasicTokenAuth(token),
            pool_size=self.pool_size,
            **client_settings_from_extra(extra),
        )
        return CredlyClient(http, str(organization_id) if organization_id else None)

    def get_conn(self) -> CredlyClient:
        """The :class:`CredlyClient` for this connection."""
        return self.client

    @property
    def organization_id(self) -> str:
        """The organization this hook acts on (connection extra ``organization_id``)."""
        org = self.client.organization_id
        if not org:
            raise ValueError(
                f"connection {self.credly_conn_id!r} sets no organization_id (extra) and none was given"
            )
        return org

    def test_connection(self) -> tuple[bool, str]:
        """Check the token by reading the organization (or listing organizations when none is set)."""
        try:
            client = self.client
            if client.organization_id:
                org = client.get_organization()
                return True, f"Connected to Credly organization {org.get('name') or client.organization_id!r}"
            count = sum(1 for _ in client.iter_organizations())
            return True, f"Connected to Credly; the token can act for {count} organization(s)"
        except (ApiError, ValueError) as exc:
            return False, str(exc)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow versions that read it from the hook."""
        from airflow_provider_credly.get_provider_info import CREDLY_UI_FIELD_BEHAVIOUR

        return dict(CREDLY_UI_FIELD_BEHAVIOUR)
