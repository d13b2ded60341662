"""The Canvas Credentials (Badgr) API v2 wire format: the response envelope's errors and the ``Link``
header pagination. Pure Python, no Airflow import.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from airflow_provider_credly.client.errors import ValidationError
from airflow_provider_credly.client.http import ApiResponse, ErrorDetails, json_object, malformed_response
from airflow_provider_credly.client.pagination import Page

__all__ = [
    "canvas_error_details",
    "canvas_one",
    "canvas_page",
    "canvas_result",
    "is_duplicate_award_error",
    "parse_link_header",
]

NOT_FOUND_HINT = (
    " (Canvas Credentials also answers 404 when the account lacks permission on the resource: "
    "check that the user is staff of the issuer)"
)
#: the refusal's wording, and nothing looser: other 400s must fail with their own message
_DUPLICATE_AWARD = re.compile(r"\bprevious award of this badge already exists\b", re.I)


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
    holds an unrevoked assertion of the badge class ("A previous award of this badge already exists for
    this recipient.", matched case-insensitively); any other 400 is not.
    """
    if not isinstance(exc, ValidationError):
        return False
    return any(_DUPLICATE_AWARD.search(m) for m in exc.messages)


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


def canvas_result(resp: ApiResponse) -> list[dict[str, Any]]:
    """The ``result`` objects of a successful response's envelope (``{"status": {...}, "result": [...]}``;
    a single object is taken as a list of one).

    :raises MalformedResponseError: the body is not a complete JSON object with a ``status`` object that
        does not say failure and a ``result`` array of objects (a body cut short, an HTML page, ``{}``).
    """
    body = json_object(resp)
    status = body.get("status")
    if not isinstance(status, dict):
        raise malformed_response(resp, "expected a status object in the response's envelope")
    if status.get("success") is False:
        raise malformed_response(resp, "the envelope of a successful response says success: false")
    result = body.get("result")
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        raise malformed_response(resp, "expected a result array in the response's envelope")
    if not all(isinstance(item, dict) for item in result):
        raise malformed_response(resp, "expected objects in the response's result")
    return result


def canvas_one(resp: ApiResponse) -> dict[str, Any]:
    """The single object of a response's ``result`` (see :func:`canvas_result`).

    :raises MalformedResponseError: the envelope is malformed or its ``result`` is empty.
    """
    result = canvas_result(resp)
    if not result:
        raise malformed_response(resp, "expected one object in the response's result, got none")
    return result[0]


def canvas_page(resp: ApiResponse) -> Page:
    """Split a Canvas Credentials list response into ``result`` items, the ``Link`` next URL (none: the
    last page) and the other links (``{"links": {...}}``).

    :raises MalformedResponseError: see :func:`canvas_result`.
    """
    items = canvas_result(resp)
    links = parse_link_header(resp.headers.get("Link"), resp.url)
    return Page(items, resp.url, links.get("next"), {"links": links})
