"""Canvas Credentials (formerly Badgr) API v2: OAuth2 token auth, error envelope, ``Link`` pagination
and a typed method for every endpoint of the issuers / staff / badge classes / assertions reference.

Built on the shared HTTP core (:class:`HttpClient` retries and error classes, :func:`iter_pages`);
pure Python, no Airflow import.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider_credly.client.canvas_auth import DEFAULT_CLIENT_ID, TOKEN_PATH, CanvasTokenAuth
from airflow_provider_credly.client.canvas_envelope import (
    canvas_error_details,
    canvas_one,
    canvas_page,
    canvas_result,
    is_duplicate_award_error,
    parse_link_header,
)
from airflow_provider_credly.client.http import ApiResponse, HttpClient
from airflow_provider_credly.client.pagination import Page, iter_pages
from airflow_provider_credly.client.payloads import PayloadError
from airflow_provider_credly.client.retry import RetryPolicy
from airflow_provider_credly.client.times import format_iso_timestamp

__all__ = [
    "ASSERTION_SCOPES",
    "DEFAULT_BASE_URL",
    "DEFAULT_CLIENT_ID",
    "REGION_BASE_URLS",
    "STAFF_ROLES",
    "TOKEN_PATH",
    "AssertionScope",
    "CanvasCredentialsClient",
    "CanvasTokenAuth",
    "IssuerKey",
    "build_assertion_payload",
    "canvas_error_details",
    "canvas_one",
    "canvas_page",
    "canvas_result",
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

MAX_PAGE_SIZE = 500
STAFF_ROLES = frozenset({"owner", "editor", "staff"})
ASSERTION_SCOPES = ("issuers", "badgeclasses")
AssertionScope = Literal["issuers", "badgeclasses"]
IssuerKey = Literal["entityId", "openBadgeId", "ref"]


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


# -------------------------------------------------------------------------------------------- payloads


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
    notify: bool | None = None,
    require_badgeclass: bool = False,
) -> dict[str, Any]:
    """The body of ``POST /v2/{scope}/{id}/assertions``; raises :class:`PayloadError` listing every
    problem. ``require_badgeclass`` is for the ``issuers`` scope (one of the two badge class ids is
    then required). ``notify``: e-mail the recipient about the award (Badgr's ``notify``; left out when
    ``None``, so the server's default applies)."""
    problems: list[str] = []
    identity = (recipient_identity or "").strip() if isinstance(recipient_identity, str) else ""
    if not identity:
        problems.append("recipient_identity is required")
    elif recipient_type == "email" and "@" not in identity:
        problems.append(f"recipient_identity {identity!r} is not an e-mail address")
    if recipient_type not in ("email", "openBadgeId", "telephone", "url"):
        problems.append(f"recipient_type {recipient_type!r} must be email, openBadgeId, telephone or url")
    if notify is not None and not isinstance(notify, bool):
        problems.append(f"notify must be true or false, got {notify!r}")
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
        "notify": notify,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    for key, value in (("issuedOn", issued_on), ("expires", expires)):
        if value in (None, ""):
            continue
        try:
            body[key] = format_iso_timestamp(value, key)
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


def _revoked(resp: ApiResponse) -> dict[str, Any]:
    # A DELETE may answer 204 or an empty body; a body that is there must be a whole envelope.
    return canvas_one(resp) if resp.status != 204 and resp.content.strip() else {}


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
        params = {"include_staff": _flag(include_staff)}
        return self.http.request("GET", "/v2/issuers", params=params, parse=canvas_result)

    def get_issuer(
        self, issuer: str, *, by: IssuerKey = "entityId", include_staff: bool | None = None
    ) -> dict[str, Any]:
        """``GET /v2/issuers/{idOrEntityId}``, ``/openBadgeId/{b64}`` or ``/ref/{b64}``.

        :param issuer: the id/entityId, or the issuer's openBadgeId URL (base64-encoded here) for
            ``by="openBadgeId"``/``"ref"``.
        """
        path = self._issuer_path(issuer, by)
        params = {"include_staff": _flag(include_staff)}
        return self.http.request("GET", path, params=params, parse=canvas_one)

    def create_issuer(self, *, include_staff: bool | None = None, **fields: Any) -> dict[str, Any]:
        """``POST /v2/issuers`` (``name``, ``email``, ``url`` required; ``description``, ``image``,
        ``sourceUrl``, ``originalJson``, ``badgrDomain``, ``createdBy``, ``organizationId``, ``staff``...).

        :param include_staff: ``False`` leaves the staff list out of the returned issuer (query
            parameter; the server's default is true).
        """
        body = _require(fields, ("name", "email", "url"), "issuer")
        params = {"include_staff": _flag(include_staff)}
        return self.http.request("POST", "/v2/issuers", params=params, json_body=body, parse=canvas_one)

    def replace_issuer(
        self, issuer: str, *, by: IssuerKey = "entityId", include_staff: bool | None = None, **fields: Any
    ) -> dict[str, Any]:
        """``PUT`` an issuer (``name``, ``email``, ``url``, ``description`` required); ``include_staff`` as
        :meth:`create_issuer`."""
        body = _require(fields, ("name", "email", "url", "description"), "issuer")
        params = {"include_staff": _flag(include_staff)}
        path = self._issuer_path(issuer, by)
        return self.http.request("PUT", path, params=params, json_body=body, parse=canvas_one)

    def update_issuer(
        self, issuer: str, *, by: IssuerKey = "entityId", include_staff: bool | None = None, **fields: Any
    ) -> dict[str, Any]:
        """``PATCH`` an issuer with only the given fields; ``include_staff`` as :meth:`create_issuer`."""
        if not fields:
            raise ValueError("update_issuer needs at least one field")
        body = {k: v for k, v in fields.items() if v is not None}
        params = {"include_staff": _flag(include_staff)}
        path = self._issuer_path(issuer, by)
        return self.http.request("PATCH", path, params=params, json_body=body, parse=canvas_one)

    def delete_issuer(self, issuer: str, *, by: IssuerKey = "entityId") -> None:
        """``DELETE`` an issuer."""
        self.http.request("DELETE", self._issuer_path(issuer, by))

    # -- staff --------------------------------------------------------------------------------------

    def add_staff(self, issuer: str, email: str, role: str) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/staff``: add an existing user (role ``owner``, ``editor``, ``staff``)."""
        body = {"email": email, "role": _role(role)}
        path = f"/v2/issuers/{_seg(issuer)}/staff"
        return self.http.request("POST", path, json_body=body, parse=canvas_one)

    def invite_staff(self, issuer: str, email: str, role: str) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/staff/invitations``: invite someone by e-mail."""
        body = {"email": email, "role": _role(role)}
        path = f"/v2/issuers/{_seg(issuer)}/staff/invitations"
        return self.http.request("POST", path, json_body=body, parse=canvas_one)

    def change_staff_role(self, issuer: str, email: str, role: str, *, method: str = "PUT") -> dict[str, Any]:
        """``PUT`` (or ``PATCH``, both documented) ``/v2/issuers/{id}/staff``: change a member's role."""
        if method.upper() not in ("PUT", "PATCH"):
            raise ValueError("method must be PUT or PATCH")
        body = {"email": email, "role": _role(role)}
        path = f"/v2/issuers/{_seg(issuer)}/staff"
        return self.http.request(method.upper(), path, json_body=body, idempotent=True, parse=canvas_one)

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

    def create_badge_class(self, issuer_id: str, /, **fields: Any) -> dict[str, Any]:
        """``POST /v2/issuers/{id}/badgeclasses`` (``name``, ``image``, ``description`` required;
        ``criteriaUrl``, ``criteriaNarrative``, ``tags``, ``alignments``, ``expires``...).

        :param issuer_id: the issuer of the path; positional-only, so the documented body field ``issuer``
            can be passed as a keyword like every other field.
        """
        body = _require(fields, ("name", "image", "description"), "badge class")
        path = f"/v2/issuers/{_seg(issuer_id)}/badgeclasses"
        return self.http.request("POST", path, json_body=body, parse=canvas_one)

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
        return self.http.request("POST", path, json_body=body, idempotent=safe, parse=canvas_one)

    def get_assertion(self, entity_id: str) -> dict[str, Any]:
        """``GET /v2/assertions/{idOrEntityId}`` (Instructure's assertions reference, not the issuers one)."""
        return self.http.request("GET", f"/v2/assertions/{_seg(entity_id)}", parse=canvas_one)

    def revoke_assertion(self, entity_id: str, reason: str | None = None) -> dict[str, Any]:
        """``DELETE /v2/assertions/{idOrEntityId}`` with ``revocation_reason`` (documented in Instructure's
        assertions reference; the issuers reference has no revoke endpoint)."""
        body = {"revocation_reason": reason} if reason else None
        path = f"/v2/assertions/{_seg(entity_id)}"
        return self.http.request("DELETE", path, json_body=body, parse=_revoked)

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
