"""Canvas Credentials (formerly Badgr) API v2: OAuth2 token auth, error envelope, ``Link`` pagination
and a typed method for every endpoint of the issuers / staff / badge classes / assertions reference.

Built on the shared HTTP core (:class:`HttpClient` retries and error classes, :func:`iter_pages`);
pure Python, no Airflow import.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.auth import AuthBase

from airflow_provider_credly.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    ValidationError,
)
from airflow_provider_credly.client.http import ApiResponse, ErrorDetails, HttpClient
from airflow_provider_credly.client.pagination import Page, iter_pages
from airflow_provider_credly.client.payloads import PayloadError
from airflow_provider_credly.client.retry import RetryPolicy

__all__ = [
    "ASSERTION_SCOPES",
    "DEFAULT_BASE_URL",
    "DEFAULT_CLIENT_ID",
    "REGION_BASE_URLS",
    "STAFF_ROLES",
    "AssertionScope",
    "CanvasCredentialsClient",
    "CanvasTokenAuth",
    "IssuerKey",
    "build_assertion_payload",
    "canvas_error_details",
    "canvas_page",
    "is_duplicate_award_error",
    "parse_link_header",
    "resolve_base_url",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.badgr.io"
REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.badgr.io",
    "eu": "https://api.eu.badgr.io",
    "au": "https://api.au.badgr.io",
    "ca": "https://api.ca.badgr.io",
    "sg": "https://api.sg.badgr.io",
}
"""Regional API hosts. The reference documents ``api.badgr.io``; the others follow the same pattern
(``api.<region>.badgr.io``); any other host can be given as a base URL."""

DEFAULT_CLIENT_ID = "public"
TOKEN_PATH = "/o/token"
MAX_PAGE_SIZE = 500
STAFF_ROLES = frozenset({"owner", "editor", "staff"})
ASSERTION_SCOPES = ("issuers", "badgeclasses")
AssertionScope = Literal["issuers", "badgeclasses"]
IssuerKey = Literal["entityId", "openBadgeId", "ref"]
NOT_FOUND_HINT = (
    " (Canvas Credentials also answers 404 when the account lacks permission on the resource: "
    "check that the user is staff of the issuer)"
)
_DUPLICATE_AWARD = re.compile(r"previous award|already (exists|has|been awarded|awarded)|duplicate", re.I)


def resolve_base_url(host: str | None = None, region: str | None = None) -> str:
    """The API base URL: ``host`` when given (a scheme-less host gets ``https://``), else the region's
    host (``us`` default, ``eu``, ``au``, ``ca``, ``sg``).
    """
    if host and host.strip():
        text = host.strip().rstrip("/")
        if "://" not in text:
            text = "https://" + text
        if text.endswith("/v2"):
            text = text[: -len("/v2")]
        return text
    key = (region or "us").strip().lower()
    if key not in REGION_BASE_URLS:
        raise ValueError(
            f"unknown Canvas Credentials region {region!r}; use one of {sorted(REGION_BASE_URLS)} "
            "or give the API host"
        )
    return REGION_BASE_URLS[key]


# --------------------------------------------------------------------------------------------- errors


def _messages(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def canvas_error_details(status: int, body: Any) -> ErrorDetails:
    """Read the Canvas Credentials envelope (``status``, ``fieldErrors``, ``validationErrors``,
    ``nonFieldErrors``, ``errorCode``) or an OAuth error (``error``, ``error_description``).

    Field errors become ``[{"attribute": field, "messages": [...]}]`` (the Credly shape), general
    validation errors ``{"attribute": None, "messages": [...]}``. A 404 message says that it may mean
    "no permission".
    """
    message = ""
    errors: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if isinstance(body, dict):
        field_errors = body.get("fieldErrors")
        if isinstance(field_errors, dict):
            for name, msgs in field_errors.items():
                if _messages(msgs):
                    errors.append({"attribute": str(name), "messages": _messages(msgs)})
        general = _messages(body.get("validationErrors")) + _messages(body.get("nonFieldErrors"))
        if general:
            errors.append({"attribute": None, "messages": general})
        envelope = body.get("status")
        description = envelope.get("description") if isinstance(envelope, dict) else None
        if isinstance(body.get("error"), str):  # OAuth2 token endpoint
            message = str(body.get("error_description") or body["error"])
            metadata["error"] = body["error"]
        elif isinstance(body.get("detail"), str):
            message = body["detail"]
        if not message and description and str(description).lower() != "ok":
            message = str(description)
        for key in ("errorCode", "warnings"):
            if body.get(key):
                metadata[key] = body[key]
    details = "; ".join(
        (f"{e['attribute']}: " if e["attribute"] else "") + m for e in errors for m in e["messages"]
    )
    if details and details not in message:
        message = f"{message}: {details}" if message else details
    message = message or f"HTTP {status}"
    if status == 404:
        message += NOT_FOUND_HINT
    return ErrorDetails(message, errors, metadata)


def is_duplicate_award_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the 400 sent for ``allowDuplicateAwards: false`` when the recipient already
    holds an unrevoked assertion of the badge class ("A previous award of this badge already exists").
    """
    if not isinstance(exc, ValidationError):
        return False
    code = str(exc.metadata.get("errorCode") or "")
    return bool(_DUPLICATE_AWARD.search(code) or any(_DUPLICATE_AWARD.search(m) for m in exc.messages))


# ------------------------------------------------------------------------------------------ pagination


_LINK_PART = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_LINK_PARAM = re.compile(r';\s*([^=;\s]+)\s*=\s*"?([^";]*)"?')


def parse_link_header(value: str | None, base_url: str = "") -> dict[str, str]:
    """``{rel: url}`` from an RFC 8288 ``Link`` header (relative URLs resolved against ``base_url``).

    ``<https://api.badgr.io/v2/...?after=X>; rel="next", <...>; rel="prev"`` ->
    ``{"next": "...", "prev": "..."}``. A ``rel`` with several values maps each of them.
    """
    out: dict[str, str] = {}
    for match in _LINK_PART.finditer(value or ""):
        url = match.group(1).strip()
        for key, rel in _LINK_PARAM.findall(match.group(2)):
            if key.lower() != "rel":
                continue
            for name in rel.split():
                out.setdefault(name.lower(), urljoin(base_url, url) if base_url else url)
    return out


def canvas_page(resp: ApiResponse) -> tuple[list[dict[str, Any]], str | None, Mapping[str, Any]]:
    """Split a Canvas Credentials list response into ``result`` items, the ``Link`` next URL and the
    other links (``{"links": {...}}``)."""
    body = resp.data if isinstance(resp.data, dict) else {}
    items = body.get("result")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ApiError(
            "expected a list in the response's result", status=resp.status, path=urlsplit(resp.url).path
        )
    links = parse_link_header(resp.headers.get("Link"), resp.url)
    return items, links.get("next"), {"links": links}


# ------------------------------------------------------------------------------------------------ auth


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

    def invalidate(self) -> None:
        """Forget the access token; the next request obtains a new one."""
        with self._lock:
            self._refresh_at = 0.0

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
        log.info("Obtained a Canvas Credentials access token (expires in %s s)", body.get("expires_in"))


# -------------------------------------------------------------------------------------------- payloads


def _iso(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        aware: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.isoformat()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc).isoformat()
    text = str(value).strip()
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO 8601 timestamp") from None
    return text


def build_assertion_payload(
    *,
    recipient_identity: str = "",
    recipient_type: str = "email",
    hashed: bool = True,
    badgeclass: str | None = None,
    badgeclass_open_badge_id: str | None = None,
    issued_on: Any = None,
    expires: Any = None,
    allow_duplicate_awards: bool | None = None,
    narrative: str | None = None,
    evidence: list[Mapping[str, Any]] | None = None,
    extensions: Mapping[str, Any] | None = None,
    ob3_award_properties: Mapping[str, Any] | None = None,
    require_badgeclass: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /v2/{scope}/{id}/assertions``; raises :class:`PayloadError` listing every
    problem. ``require_badgeclass`` is for the ``issuers`` scope (one of the two badge class ids is
    then required)."""
    problems: list[str] = []
    identity = (recipient_identity or "").strip() if isinstance(recipient_identity, str) else ""
    if not identity:
        problems.append("recipient_identity is required")
    elif recipient_type == "email" and "@" not in identity:
        problems.append(f"recipient_identity {identity!r} is not an e-mail address")
    if recipient_type not in ("email", "openBadgeId", "telephone", "url"):
        problems.append(f"recipient_type {recipient_type!r} must be email, openBadgeId, telephone or url")
    if require_badgeclass and not (badgeclass or badgeclass_open_badge_id):
        problems.append(
            "badgeclass or badgeclass_open_badge_id is required when issuing in an issuer's scope"
        )
    body: dict[str, Any] = {"recipient": {"identity": identity, "type": recipient_type, "hashed": hashed}}
    optional = {
        "badgeclass": badgeclass,
        "badgeclassOpenBadgeId": badgeclass_open_badge_id,
        "allowDuplicateAwards": allow_duplicate_awards,
        "narrative": narrative,
        "evidence": [dict(e) for e in evidence] if evidence else None,
        "extensions": dict(extensions) if extensions else None,
        "ob3AwardProperties": dict(ob3_award_properties) if ob3_award_properties else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    for key, value in (("issuedOn", issued_on), ("expires", expires)):
        if value in (None, ""):
            continue
        try:
            body[key] = _iso(value, key)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise PayloadError("assertion", problems)
    return body


def _require(fields: Mapping[str, Any], names: tuple[str, ...], what: str) -> dict[str, Any]:
    missing = [n for n in names if not fields.get(n)]
    if missing:
        raise PayloadError(what, [f"{n} is required" for n in missing])
    return {k: v for k, v in fields.items() if v is not None}


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.strip().encode()).decode("ascii")


def _seg(value: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("an id is required")
    return quote(text, safe="")


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _result(resp: ApiResponse) -> list[dict[str, Any]]:
    body = resp.data if isinstance(resp.data, dict) else {}
    result = body.get("result")
    if isinstance(result, dict):
        return [result]
    return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []


def _one(resp: ApiResponse) -> dict[str, Any]:
    items = _result(resp)
    return items[0] if items else {}


def _role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise ValueError(f"role {role!r} must be one of {sorted(STAFF_ROLES)}")
    return role


# ---------------------------------------------------------------------------------------------- client


class CanvasCredentialsClient:
    """Canvas Credentials API v2: issuers, staff, badge classes and assertions.

    Single objects are returned as the first element of the envelope's ``result``; lists as lists or
    iterators. Errors are the HTTP core's classes (400 -> :class:`ValidationError` with ``errors``).

    :param http: the HTTP core; its ``auth`` is normally a :class:`CanvasTokenAuth`.
    """

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @classmethod
    def create(
        cls,
        username: str,
        password: str,
        *,
        base_url: str | None = None,
        region: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        scope: str | None = None,
        refresh_margin: float = 60.0,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        pool_size: int = 16,
    ) -> CanvasCredentialsClient:
        """A client with its own HTTP session, logging in with the password grant."""
        http = HttpClient(
            resolve_base_url(base_url, region),
            timeout=timeout,
            retry=retry,
            verify=verify,
            pool_size=pool_size,
            error_parser=canvas_error_details,
            validation_statuses=frozenset({400}),
        )
        http.auth = CanvasTokenAuth(
            http, username, password, client_id=client_id, scope=scope, refresh_margin=refresh_margin
        )
        return cls(http)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.http.base_url!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()

    # -- issuers ------------------------------------------------------------------------------------

    @staticmethod
    def _issuer_path(issuer: str, by: IssuerKey) -> str:
        if by == "entityId":
            return f"/v2/issuers/{_seg(issuer)}"
        if by in ("openBadgeId", "ref"):
            if not issuer or not issuer.strip():
                raise ValueError("an issuer openBadgeId is required")
            return f"/v2/issuers/{by}/{_b64(issuer)}"
        raise ValueError(f"by must be 'entityId', 'openBadgeId' or 'ref', got {by!r}")

    def list_issuers(self, *, include_staff: bool | None = None) -> list[dict[str, Any]]:
        """``GET /v2/issuers``: the issuers the user is staff of."""
        return _result(
            self.http.request("GET", "/v2/issuers", params={"include_staff": _flag(include_staff)})
        )

    def get_issuer(
        self, issuer: str, *, by: IssuerKey = "entityId", include_staff: bool | None = None
    ) -> dict[str, Any]:
        """``GET /v2/issuers/{idOrEntityId}``, ``/openBadgeId/{b64}`` or ``/ref/{b64}``.

        :param issuer: the id/entityId, or the issuer's openBadgeId URL (base64-encoded here) for
            ``by="openBadgeId"``/``"ref"``.
        """
        path = self._issuer_path(issuer, by)
        return _one(self.http.request("GET", path, params={"include_staff": _flag(include_staff)}))

    def create_issuer(self, **fields: Any) -> dict[str, Any]:
        """``POST /v2/issuers`` (``name``, ``email``, ``url`` required; ``description``, ``image``,
        ``sourceUrl``, ``originalJson``, ``badgrDomain``, ``createdBy``, ``organizationId``, ``staff``...)."""
        body = _require(fields, ("name", "email", "url"), "issuer")
        return _one(self.http.request("POST", "/v2/issuers", json_body=body))

    def replace_issuer(self, issuer: str, *, by: IssuerKey = "entityId", **fields: Any) -> dict[str, Any]:
        """``PUT`` an issuer (``name``, ``email``, ``url``, ``description`` required)."""
        body = _require(fields, ("name", "email", "url", "description"), "issuer")
        return _one(self.http.request("PUT", self._issuer_path(issuer, by), json_body=body))

    def update_issuer(self, issuer: str, *, by: IssuerKey = "entityId", **fields: Any) -> dict[str, Any]:
        """``PATCH`` an issuer with only the given fields."""
        if not fields:
            raise ValueError("update_issuer needs at least one field")
        body = {k: v for k, v in fields.items() if v is not None}
        return _one(self.http.request("PATCH", self._issuer_path(issuer, by), json_body=body))

    def delete_issuer(self, issuer: str, *, by: IssuerKey = "entityId") -> None:
        """``DELETE`` an issuer."""
        self.http.request("DELETE", self._issuer_path(issuer, by))

    # -- staff --------------------------------------------------------------------------------------

    def add_staff(self, issuer: str, email: str, role: str) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/staff``: add an existing user (role ``owner``, ``editor``, ``staff``)."""
        body = {"email": email, "role": _role(role)}
        return _one(self.http.request("POST", f"/v2/issuers/{_seg(issuer)}/staff", json_body=body))

    def invite_staff(self, issuer: str, email: str, role: str) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/staff/invitations``: invite someone by e-mail."""
        body = {"email": email, "role": _role(role)}
        path = f"/v2/issuers/{_seg(issuer)}/staff/invitations"
        return _one(self.http.request("POST", path, json_body=body))

    def change_staff_role(self, issuer: str, email: str, role: str, *, method: str = "PUT") -> dict[str, Any]:
        """``PUT`` (or ``PATCH``, both documented) ``/v2/issuers/{id}/staff``: change a member's role."""
        if method.upper() not in ("PUT", "PATCH"):
            raise ValueError("method must be PUT or PATCH")
        body = {"email": email, "role": _role(role)}
        path = f"/v2/issuers/{_seg(issuer)}/staff"
        return _one(self.http.request(method.upper(), path, json_body=body, idempotent=True))

    def remove_staff(self, issuer: str, email: str) -> None:
        """``DELETE /v2/issuers/{id}/staff/{emailBase64}``."""
        if not email or not email.strip():
            raise ValueError("an e-mail address is required")
        self.http.request("DELETE", f"/v2/issuers/{_seg(issuer)}/staff/{_b64(email)}")

    # -- badge classes ------------------------------------------------------------------------------

    def iter_badge_classes(self, issuer: str, *, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        """``GET /v2/issuers/{id}/badgeclasses``."""
        path = f"/v2/issuers/{_seg(issuer)}/badgeclasses"
        for page in iter_pages(
            self.http, path, {"include_archived": _flag(include_archived)}, parse=canvas_page
        ):
            yield from page.items

    def list_badge_classes(self, issuer: str, *, include_archived: bool = False) -> list[dict[str, Any]]:
        """Every badge class of an issuer, as a list."""
        return list(self.iter_badge_classes(issuer, include_archived=include_archived))

    def create_badge_class(self, issuer: str, **fields: Any) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/badgeclasses`` (``name``, ``image``, ``description`` required;
        ``criteriaUrl``, ``criteriaNarrative``, ``tags``, ``alignments``, ``expires``...)."""
        body = _require(fields, ("name", "image", "description"), "badge class")
        return _one(self.http.request("POST", f"/v2/issuers/{_seg(issuer)}/badgeclasses", json_body=body))

    # -- assertions ---------------------------------------------------------------------------------

    @staticmethod
    def _assertions_path(scope: str, entity_id: str) -> str:
        if scope not in ASSERTION_SCOPES:
            raise ValueError(f"scope must be one of {ASSERTION_SCOPES}, got {scope!r}")
        return f"/v2/{scope}/{_seg(entity_id)}/assertions"

    def iter_assertion_pages(
        self,
        scope: AssertionScope,
        entity_id: str,
        *,
        recipient: str | None = None,
        include_expired: bool = False,
        include_revoked: bool = False,
        num: int | None = MAX_PAGE_SIZE,
        start_url: str | None = None,
    ) -> Iterator[Page]:
        """``GET /v2/{scope}/{id}/assertions`` page by page, following the ``Link: rel="next"`` URL verbatim.

        :param scope: ``issuers`` or ``badgeclasses``.
        :param recipient: only this recipient identifier.
        :param include_expired: include expired assertions (the API leaves them out by default).
        :param include_revoked: include revoked assertions (left out by default).
        :param num: page size (1..500); ``None`` asks for everything in one response.
        :param start_url: resume from a saved :attr:`Page.next_url`.
        """
        if num is not None and not 1 <= num <= MAX_PAGE_SIZE:
            raise ValueError(f"num must be between 1 and {MAX_PAGE_SIZE}, got {num}")
        params = {
            "recipient": recipient,
            "num": num,
            "include_expired": _flag(include_expired),
            "include_revoked": _flag(include_revoked),
        }
        path = self._assertions_path(scope, entity_id)
        return iter_pages(self.http, path, params, start_url=start_url, parse=canvas_page)

    def iter_assertions(
        self,
        scope: AssertionScope,
        entity_id: str,
        *,
        recipient: str | None = None,
        include_expired: bool = False,
        include_revoked: bool = False,
        num: int | None = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every assertion of a scope (see :meth:`iter_assertion_pages`)."""
        for page in self.iter_assertion_pages(
            scope,
            entity_id,
            recipient=recipient,
            include_expired=include_expired,
            include_revoked=include_revoked,
            num=num,
        ):
            yield from page.items

    def issue_assertion(
        self, scope: AssertionScope, entity_id: str, *, retry_unknown: bool | None = None, **fields: Any
    ) -> dict[str, Any]:
        """``POST /v2/{scope}/{id}/assertions``; ``fields`` as :func:`build_assertion_payload`.

        :param retry_unknown: let the HTTP core repeat the POST after a 5xx or a lost answer. Default:
            only with ``allow_duplicate_awards=False``, where the server refuses a second award (a repeat
            that finds the first award fails with a duplicate-award :class:`ValidationError`, see
            :func:`is_duplicate_award_error`); otherwise the request is sent once.
        """
        path = self._assertions_path(scope, entity_id)
        body = build_assertion_payload(require_badgeclass=scope == "issuers", **fields)
        safe = body.get("allowDuplicateAwards") is False if retry_unknown is None else retry_unknown
        return _one(self.http.request("POST", path, json_body=body, idempotent=safe))

    def get_assertion(self, entity_id: str) -> dict[str, Any]:
        """``GET /v2/assertions/{idOrEntityId}`` (Instructure's assertions reference, not the issuers one)."""
        return _one(self.http.request("GET", f"/v2/assertions/{_seg(entity_id)}"))

    def revoke_assertion(self, entity_id: str, reason: str | None = None) -> dict[str, Any]:
        """``DELETE /v2/assertions/{idOrEntityId}`` with ``revocation_reason`` (documented in Instructure's
        assertions reference; the issuers reference has no revoke endpoint)."""
        body = {"revocation_reason": reason} if reason else None
        return _one(self.http.request("DELETE", f"/v2/assertions/{_seg(entity_id)}", json_body=body))

    def find_assertion(
        self, badgeclass: str, recipient: str, *, include_revoked: bool = False
    ) -> dict[str, Any] | None:
        """The recipient's newest assertion of a badge class (unrevoked unless ``include_revoked``)."""
        found: dict[str, Any] | None = None
        for item in self.iter_assertions(
            "badgeclasses",
            badgeclass,
            recipient=recipient,
            include_expired=True,
            include_revoked=include_revoked,
        ):
            if not include_revoked and item.get("revoked"):
                continue
            if found is None or str(item.get("issuedOn") or "") > str(found.get("issuedOn") or ""):
                found = item
        return found
