"""The Canvas Credentials (Badgr) API v2 wire format: the response envelope's errors and the ``Link``
header pagination. Pure Python, no Airflow import.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from airflow_provider_credly.client.errors import ApiError, ValidationError
from airflow_provider_credly.client.http import ApiResponse, ErrorDetails
from airflow_provider_credly.client.pagination import Page

__all__ = ["canvas_error_details", "canvas_page", "is_duplicate_award_error", "parse_link_header"]

NOT_FOUND_HINT = (
    " (Canvas Credentials also answers 404 when the account lacks permission on the resource: "
    "check that the user is staff of the issuer)"
)
_DUPLICATE_AWARD = re.compile(r"previous award|already (exists|has|been awarded|awarded)|duplicate", re.I)


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


def canvas_page(resp: ApiResponse) -> Page:
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
    return Page(items, resp.url, links.get("next"), {"links": links})
