"""CredlyHook: turns an Airflow connection into a :class:`CredlyClient`."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
from airflow_provider_credly.client.tokens import (
    DEFAULT_TOKEN_LIFETIME_DAYS,
    DEFAULT_TOKEN_WARN_DAYS,
    PERMISSIONS,
    TokenStatus,
)
from airflow_provider_credly.hooks.connection import (
    base_url_from_connection,
    client_settings_from_extra,
    number_from_extra,
)

__all__ = ["CredlyHook"]


class _FirstRequestHttpClient(HttpClient):
    """An :class:`HttpClient` that calls ``on_first_request()`` once, just before the first request it
    sends (on the thread that sends it; requests of other threads do not wait for it)."""

    def __init__(self, base_url: str, *, on_first_request: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._on_first_request: Callable[[], None] | None = on_first_request
        self._first_request_lock = threading.Lock()

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        if self._on_first_request is not None:
            with self._first_request_lock:
                callback, self._on_first_request = self._on_first_request, None
            if callback is not None:  # its own requests find it unset: no recursion
                callback()
        return super().request(method, path_or_url, **kwargs)


class CredlyHook(BaseHook):
    """Interact with the Credly API v1.

    The connection (type ``credly``) holds:

    * ``password``: the organization's authorization token (sent as HTTP Basic user name);
    * ``host``: the API base URL, default ``https://api.credly.com/v1`` (sandbox:
      ``https://sandbox-api.credly.com/v1``);
    * ``extra``: ``organization_id`` and optional ``timeout``, ``connect_timeout``, ``max_retries``,
      ``backoff_base``, ``backoff_max``, ``retry_total_timeout``, ``verify``; ``lifetime_days``
      (default 180: Credly tokens expire that long after creation) and ``expiry_warn_days`` (default 30:
      a task checking its token logs one warning when fewer days remain; 0 turns the warning off).
      (No ``token`` in these names: Airflow masks extras whose names contain it. ``token_lifetime_days`` and
      ``token_warn_days`` are read too, where the new names are absent.)

    :param credly_conn_id: the Airflow connection id.
    :param organization_id: act on this organization instead of the connection's ``organization_id``.
    :param pool_size: HTTP connections kept open (raise it for concurrent bulk work).
    :param warn_token_expiry: before the hook's first request, look the token up once
        (:meth:`check_token`) and log one warning when it has fewer than the warning days left, so a
        TaskFlow task using the hook directly is warned as the operators' tasks are. No request is added
        when the token was checked already (an issuing operator checks before its first POST); a failed
        look-up is logged and ignored, never failing the task. ``False`` for hooks made per poll (triggers).
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
        warn_token_expiry: bool = True,
    ) -> None:
        super().__init__()
        self.credly_conn_id = credly_conn_id
        self._organization_id = organization_id
        self.pool_size = pool_size
        self.warn_token_expiry = warn_token_expiry
        self._token_checked = False
        self._token_lookup_started = False
        self._token_status: TokenStatus | None = None

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
        http = _FirstRequestHttpClient(
            base_url_from_connection(conn.host, conn.port, DEFAULT_BASE_URL),
            on_first_request=self._check_token_before_first_request,
            auth=BasicTokenAuth(token),
            pool_size=self.pool_size,
            **client_settings_from_extra(extra),
        )
        return CredlyClient(http, str(organization_id) if organization_id else None)

    def get_conn(self) -> CredlyClient:
        """The :class:`CredlyClient` for this connection (its first request first checks the token's
        expiry once, see ``warn_token_expiry``)."""
        return self.client

    def _check_token_before_first_request(self) -> None:
        """The first-use token check (see ``warn_token_expiry``): nothing when turned off or when the token
        is being or was looked up already; never raises."""
        if not self.warn_token_expiry or self._token_checked or self._token_lookup_started:
            return
        try:
            self.check_token()
        except Exception as exc:  # a warning about the token must never fail the task's own request
            self.log.warning("Could not check the Credly token of %r: %s", self.credly_conn_id, exc)

    @property
    def organization_id(self) -> str:
        """The organization this hook acts on (connection extra ``organization_id``)."""
        org = self.client.organization_id
        if not org:
            raise ValueError(
                f"connection {self.credly_conn_id!r} sets no organization_id (extra) and none was given"
            )
        return org

    @cached_property
    def token_settings(self) -> tuple[float, float]:
        """``(lifetime_days, expiry_warn_days)`` from the connection extra (defaults 180 and 30)."""
        extra = self.get_connection(self.credly_conn_id).extra_dejson or {}
        # the names the first drafts used are still read; Airflow shows their values as "***"
        lifetime = number_from_extra(
            extra,
            "lifetime_days",
            number_from_extra(extra, "token_lifetime_days", DEFAULT_TOKEN_LIFETIME_DAYS),
        )
        warn = number_from_extra(
            extra, "expiry_warn_days", number_from_extra(extra, "token_warn_days", DEFAULT_TOKEN_WARN_DAYS)
        )
        if lifetime <= 0:
            raise ValueError(f"connection extra 'lifetime_days' must be positive, got {lifetime}")
        return lifetime, warn

    def get_token_status(self) -> TokenStatus | None:
        """Days left and permissions of the connection's own token (one look-up per hook), or ``None`` when
        the organization does not list it. Never returns, logs or raises the token's value.

        :raises ApiError: the authorization tokens could not be read.
        """
        if not self._token_checked:
            self._token_lookup_started = True  # the look-up's own request starts no first-use check
            lifetime, _ = self.token_settings
            self._token_status = self.client.get_token_status(lifetime_days=lifetime)
            self._token_checked = True
        return self._token_status

    def check_token(self, *, require: str | None = None) -> TokenStatus | None:
        """Look the token up (once per hook), log one warning when fewer than ``expiry_warn_days`` remain,
        and with ``require`` fail when the token lacks that permission.

        Best effort otherwise: when the tokens cannot be read (or the token is not listed) a warning is
        logged and ``None`` returned, so the work goes on and Credly itself decides.

        :param require: ``read``, ``write`` or ``delete``.
        :raises PermissionError: the token lacks ``require`` (checked before any write is sent).
        """
        if require is not None and require not in PERMISSIONS:
            raise ValueError(f"require must be one of {', '.join(PERMISSIONS)}, got {require!r}")
        first = not self._token_checked
        try:
            status = self.get_token_status()
        except (ApiError, ValueError) as exc:
            self._token_checked = True  # a failed look-up is not repeated by every caller
            if first:
                self.log.warning("Could not check the Credly token of %r: %s", self.credly_conn_id, exc)
            return None
        if status is None:
            if first:
                self.log.warning(
                    "The token of connection %r is not among the organization's authorization tokens: "
                    "its expiry and permissions are unknown",
                    self.credly_conn_id,
                )
            return None
        _, warn_days = self.token_settings
        if first and warn_days > 0 and status.days_left < warn_days:
            self.log.warning(
                "The Credly token of connection %r %s: fewer than %g days left (expiry_warn_days); create "
                "a new token and update the connection",
                self.credly_conn_id,
                status.describe(),
                warn_days,
            )
        if require is not None and not getattr(status, PERMISSIONS[require]):
            kind = (
                "read-only" if status.read_only else f"permissions: {', '.join(status.permissions) or 'none'}"
            )
            raise PermissionError(
                f"the token of connection {self.credly_conn_id!r} lacks {PERMISSIONS[require]} ({kind}); "
                f"nothing was sent"
            )
        return status

    def test_connection(self) -> tuple[bool, str]:
        """Check the token by reading the organization (or listing organizations when none is set), and
        report the days it has left and its permissions."""
        try:
            client = self.client
            if client.organization_id:
                org = client.get_organization()
                message = f"Connected to Credly organization {org.get('name') or client.organization_id!r}"
            else:
                count = sum(1 for _ in client.iter_organizations())
                return True, f"Connected to Credly; the token can act for {count} organization(s)"
        except (ApiError, ValueError) as exc:
            return False, str(exc)
        return True, f"{message}; {self._describe_token()}"

    def _describe_token(self) -> str:
        try:
            status = self.get_token_status()
        except (ApiError, ValueError) as exc:
            return f"the token's expiry is unknown ({exc})"
        if status is None:
            return "the token is not among the organization's authorization tokens: its expiry is unknown"
        _, warn_days = self.token_settings
        text = f"the token {status.describe()}"
        if warn_days > 0 and status.days_left < warn_days:
            text += f" (fewer than {warn_days:g} days left: renew it)"
        return text

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow versions that read it from the hook."""
        from airflow_provider_credly.get_provider_info import CREDLY_UI_FIELD_BEHAVIOUR

        return dict(CREDLY_UI_FIELD_BEHAVIOUR)
