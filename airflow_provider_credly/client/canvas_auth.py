"""OAuth2 for Canvas Credentials (Badgr): password grant at ``POST /o/token``, Bearer header, proactive
refresh and one refresh after a 401. Pure Python, no Airflow import.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.auth import AuthBase

from airflow_provider_credly.client.errors import AuthenticationError, BadRequestError, NotFoundError
from airflow_provider_credly.client.http import HttpClient

__all__ = ["DEFAULT_CLIENT_ID", "TOKEN_PATH", "CanvasTokenAuth"]

log = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = "public"
TOKEN_PATH = "/o/token"


class _NoAuth(AuthBase):
    """Sends no credential (the token request carries its own in the form body)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class CanvasTokenAuth(AuthBase):
    """OAuth2 password grant at ``POST /o/token`` and ``Authorization: Bearer`` on every request.

    The token is fetched on first use and refreshed ``refresh_margin`` seconds before it expires (at
    most half its lifetime), with the ``refresh_token`` grant when the server issued a refresh token
    (falling back to the password grant when that fails). After a 401 the HTTP core calls
    :meth:`on_unauthorized` once: the token is replaced and the request retried. A rejected password
    raises :class:`AuthenticationError` at once (no loop). Thread-safe: concurrent callers share one
    token and one refresh.

    :param http: the HTTP client the token requests go through (its base URL hosts ``/o/token``).
    :param username: the account's user name (e-mail).
    :param password: the account's password.
    :param client_id: OAuth2 client id (``public`` for the password grant).
    :param scope: OAuth2 scopes to ask for (space-separated), or ``None`` for the account's default.
    :param refresh_margin: seconds before expiry at which the token is renewed.
    :param clock: wall clock in seconds (injectable for tests).
    :param on_token: called with every new access and refresh token (e.g. Airflow's ``mask_secret``).
    """

    def __init__(
        self,
        http: HttpClient,
        username: str,
        password: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        scope: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        if not username or not username.strip() or not password:
            raise ValueError("a Canvas Credentials user name (e-mail) and password are required")
        self._http = http
        self._username = username.strip()
        self._password = password
        self.client_id = client_id or DEFAULT_CLIENT_ID
        self.scope = scope or None
        self.refresh_margin = max(0.0, refresh_margin)
        self._clock = clock
        self._on_token = on_token
        self._lock = threading.RLock()
        self._local = threading.local()
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self.generation = 0
        """Number of tokens obtained so far."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, token=***)"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token, generation = self._current()
        self._local.generation = generation
        r.headers["Authorization"] = f"Bearer {token}"
        return r

    @property
    def expires_at(self) -> float:
        """Clock time at which the current token expires (``inf`` when the server gave no lifetime)."""
        return self._expires_at

    def on_unauthorized(self) -> bool:
        """Replace the token after a 401 (unless another thread already did) and ask for one retry."""
        with self._lock:
            if getattr(self._local, "generation", None) == self.generation:
                self._renew()
        return True

    def _current(self) -> tuple[str, int]:
        with self._lock:
            if self._access_token is None or self._clock() >= self._refresh_at:
                self._renew()
            assert self._access_token is not None
            return self._access_token, self.generation

    def _renew(self) -> None:
        if self._refresh_token:
            try:
                self._store(
                    self._token_request({"grant_type": "refresh_token", "refresh_token": self._refresh_token})
                )
                return
            except (AuthenticationError, BadRequestError) as exc:
                log.info(
                    "Canvas Credentials refresh token rejected (%s); using the password grant", exc.status
                )
                self._refresh_token = None
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        self._store(self._token_request(form))

    def _token_request(self, form: dict[str, str]) -> Mapping[str, Any]:
        form = {**form, "client_id": self.client_id}
        if self.scope:
            form["scope"] = self.scope
        try:
            resp = self._http.request("POST", TOKEN_PATH, form=form, idempotent=True, auth=_NoAuth())
        except (AuthenticationError, BadRequestError, NotFoundError) as exc:
            raise AuthenticationError(
                f"the token request ({form['grant_type']} grant) was rejected: {exc.message}",
                status=exc.status,
                method="POST",
                path=exc.path,
            ) from None
        body = resp.data if isinstance(resp.data, dict) else {}
        if not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise AuthenticationError(
                "the token response has no access_token", status=resp.status, method="POST", path=TOKEN_PATH
            )
        return body

    def _store(self, body: Mapping[str, Any]) -> None:
        now = self._clock()
        self._access_token = str(body["access_token"])
        if body.get("refresh_token"):
            self._refresh_token = str(body["refresh_token"])
        try:
            lifetime = float(body.get("expires_in") or math.inf)
        except (TypeError, ValueError):
            lifetime = math.inf
        self._expires_at = now + lifetime
        self._refresh_at = now + lifetime - min(self.refresh_margin, lifetime / 2)
        self.generation += 1
        if self._on_token is not None:
            for secret in (self._access_token, self._refresh_token):
                if secret:
                    self._on_token(secret)
        log.info("Obtained a Canvas Credentials access token (expires in %s s)", body.get("expires_in"))
