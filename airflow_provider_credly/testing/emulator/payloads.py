"""Parsing of optional badge payload fields (expiry, evidence) shared by issue and replace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import MSG_INVALID
from .util import NONE_DAY, NONE_TS, parse_timestamp

LOCALES = ("en", "fr", "de", "ko", "ja", "zh-CN", "pt", "es-ES", "es-US", "fr-CA", "pt-BR")
EVIDENCE_TYPES = ("KeyValueGroupEvidence", "PlainTextEvidence", "UrlEvidence", "IdEvidence")


def parse_expires(
    payload: Mapping[str, Any], previous: tuple[int, int] | None, errors: list[tuple[str, str]]
) -> tuple[int, int]:
    """``(expires_ms, expires_day)``: omitted keeps ``previous`` (replace), null/false/"" = no expiry."""
    if "expires_at" not in payload:
        return previous if previous is not None else (NONE_TS, NONE_DAY)
    value = payload["expires_at"]
    if value in (None, False, ""):
        return NONE_TS, NONE_DAY
    try:
        return parse_timestamp(value)
    except ValueError:
        errors.append(("expires_at", MSG_INVALID))
        return NONE_TS, NONE_DAY


def parse_evidence(
    value: Any, errors: list[tuple[str, str]], new_id: Callable[[], str]
) -> list[dict[str, Any]]:
    """Validate evidence items and give each an id (``KeyValuePairEvidence`` values lose their type)."""
    if value in (None, []):
        return []
    if not isinstance(value, list) or not all(
        isinstance(i, dict) and i.get("type") in EVIDENCE_TYPES for i in value
    ):
        errors.append(("evidence", MSG_INVALID))
        return []
    out = []
    for item in value:
        doc = {"id": new_id(), **{k: v for k, v in item.items() if k != "values"}}
        if "values" in item:
            doc["values"] = [{k: v for k, v in x.items() if k != "type"} for x in item["values"] or []]
        out.append(doc)
    return out
