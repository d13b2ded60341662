"""CanvasCredentialsHook: turns an Airflow connection into a :class:`CanvasCredentialsClient`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_credly.client import ApiError, HttpClient
from airflow_provider_credly.client.canvas import (
    DEFAULT_CLIENT_ID,
    CanvasCredentialsClient,
    CanvasTokenAuth,
    canvas_error_details,
    resolve_base_url,
)
from airflow_provider_credly.hooks.connection import client_settings_from_extra, connection_url

__all__ = ["CanvasCredentialsHook"]


class CanvasCredentialsHook(BaseHook):
    """Interact with the Canvas Credentials (formerly Badgr) API v2.

    The connection (type ``canvas_credentials``) holds:

    * ``login``: the account's user name (e-mail); ``password``: its password (OAuth2 password grant
      at ``/o/token``, then Bearer tokens refreshed automatically);
    * ``host``: the API base URL (e.g. ``https://api.eu.badgr.io``, or any self-hosted host); when empty,
      extra ``region`` picks ``us`` (default, ``https://api.badgr.io``), ``eu``, ``au``, ``ca`` or ``sg``;
    * ``extra``: ``region``, ``client_id`` (default ``public``), ``scope`` (e.g. ``rw:issuer rw:backpack``),
      ``refresh_margin`` (seconds, default 60) and the HTTP settings of the Credly hook
      (``timeout``, ``connect_timeout``, ``max_retries``, ``backoff_base``, ``backoff_max``,
      ``retry_total_timeout``, ``verify``).

    :param canvas_credentials_conn_id: the Airflow connection id.
    :param pool_size: HTTP connections kept open (raise it for concurrent bulk work).
    """

    conn_name_attr = "canvas_credentials_conn_id"
    default_conn_name = "canvas_credentials_default"
    conn_type = "canvas_credentials"
    hook_name = "Canvas Credentials (Badgr)"

    def __init__(self, canvas_credentials_conn_id: str = default_conn_name, *, pool_size: int = 16) -> None:
        super().__init__()
        self.canvas_credentials_conn_id = canvas_credentials_conn_id
        self.pool_size = pool_size

    def __repr__(self) -> str:
        return f"CanvasCredentialsHook(canvas_credentials_conn_id={self.canvas_credentials_conn_id!r})"

    @cached_property
    def client(self) -> CanvasCredentialsClient:
        """The API client built from the connection (created once per hook)."""
        conn = self.get_connection(self.canvas_credentials_conn_id)
        username = (conn.login or "").strip()
        password = conn.password or ""
        if not username or not password:
            raise ValueError(
                f"connection {self.canvas_credentials_conn_id!r} needs the account's e-mail in login and "
                "its password in password"
            )
        mask_secret(password)
        extra = conn.extra_dejson or {}
        http = HttpClient(
            resolve_base_url(connection_url(conn.host, conn.port), extra.get("region")),
            pool_size=self.pool_size,
            error_parser=canvas_error_details,
            validation_statuses=frozenset({400}),
            **client_settings_from_extra(extra),
        )
        margin = extra.get("refresh_margin")
        http.auth = CanvasTokenAuth(
            http,
            username,
            password,
            client_id=str(extra.get("client_id") or DEFAULT_CLIENT_ID),
            scope=extra.get("scope") or None,
            refresh_margin=float(margin) if margin not in (None, "") else 60.0,
            on_token=mask_secret,
        )
        return CanvasCredentialsClient(http)

    def get_conn(self) -> CanvasCredentialsClient:
        """The :class:`CanvasCredentialsClient` for this connection."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Log in (password grant) and list the issuers the account is staff of."""
        try:
            issuers = self.client.list_issuers(include_staff=False)
        except (ApiError, ValueError) as exc:
            return False, str(exc)
        return True, f"Connected to Canvas Credentials; the account is staff of {len(issuers)} issuer(s)"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow versions that read it from the hook."""
        from airflow_provider_credly.get_provider_info import CONNECTION_TYPES

        entry = next(c for c in CONNECTION_TYPES if c["connection-type"] == cls.conn_type)
        return dict(entry["ui-field-behaviour"])
