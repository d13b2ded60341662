"""Filters and sorts, once: Credly's ``key::value|key::value`` and ``key1|-key2`` built from Python values.

Every key is checked against the endpoint's documented keys and every value against its kind, so a typo
fails with a clear ``ValueError`` before any HTTP request is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider_credly.client.times import format_date

__all__ = [
    "BADGE_FILTERS",
    "BADGE_SORTS",
    "BADGE_STATES",
    "BADGE_TEMPLATE_FILTERS",
    "BADGE_TEMPLATE_SORTS",
    "BADGE_TEMPLATE_STATES",
    "EMPLOYEE_FILTERS",
    "EMPLOYEE_SORTS",
    "EMPLOYEE_STATES",
    "FilterSpec",
    "Kind",
    "build_filter",
    "build_sort",
    "parse_filter",
]

BADGE_STATES = ("pending", "accepted", "rejected", "revoked")
EMPLOYEE_STATES = ("created", "pending", "accepted", "rejected")
BADGE_TEMPLATE_STATES = ("active", "archived", "draft")


class Kind(Enum):
    """How a filter value is written."""

    TEXT = "text"
    DATE = "date"
    BOOL = "bool"
    LIST = "list"


@dataclass(frozen=True)
class FilterSpec:
    """One documented filter key: its kind and, for enumerations, the allowed values."""

    kind: Kind
    choices: tuple[str, ...] = ()


_TEXT = FilterSpec(Kind.TEXT)
_DATE = FilterSpec(Kind.DATE)
_LIST = FilterSpec(Kind.LIST)

BADGE_FILTERS: Mapping[str, FilterSpec] = {
    "query": _TEXT,
    "state": FilterSpec(Kind.LIST, BADGE_STATES),
    "user_id": _TEXT,
    "issued_at_min": _DATE,
    "issued_at_max": _DATE,
    "issued_at_date_min": _DATE,
    "issued_at_date_max": _DATE,
    "issuer_id": _LIST,
    "issuer_earner_id": _TEXT,
    "public": FilterSpec(Kind.BOOL),
    "badge_templates[owner_id]": _LIST,
    "badge_templates[name]": _TEXT,
    "badge_templates[reporting_tags]": _LIST,
    "badge_templates[skills]": _LIST,
    "created_at_min": _DATE,
    "created_at_max": _DATE,
    "expires_at_min": _DATE,
    "expires_at_max": _DATE,
    "expires_at_date_min": _DATE,
    "expires_at_date_max": _DATE,
    "state_updated_at_min": _DATE,
    "state_updated_at_max": _DATE,
    "updated_at_min": _DATE,
    "updated_at_max": _DATE,
    "badge_template_id": _LIST,
    "recipient_email": _TEXT,
    "recipient_email_all": _TEXT,
}
BADGE_SORTS = (
    "created_at",
    "issued_at",
    "state_updated_at",
    "badge_templates[name]",
    "users[first_name]",
    "users[last_name]",
)
# The reference copy shows the badge_template object but lists no keys for GET .../badge_templates: these
# are the template fields the badges reference filters and sorts on (name, state, public; dates).
BADGE_TEMPLATE_FILTERS: Mapping[str, FilterSpec] = {
    "name": _TEXT,
    "state": FilterSpec(Kind.LIST, BADGE_TEMPLATE_STATES),
    "public": FilterSpec(Kind.BOOL),
}
BADGE_TEMPLATE_SORTS = ("name", "created_at", "updated_at")
EMPLOYEE_FILTERS: Mapping[str, FilterSpec] = {
    "name_or_email": _TEXT,
    "employee_state": FilterSpec(Kind.TEXT, EMPLOYEE_STATES),
    "team": _TEXT,
}
# ``name`` is the reference's own example (``-name``: reverse-alphabetical), beside the four keys it lists.
EMPLOYEE_SORTS = ("email", "created_at", "first_name", "last_name", "name")


def _text(key: str, value: Any, *, item: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"filter {key!r} needs text, got {type(value).__name__} {value!r}")
    text = str(value).strip()
    if not text:
        raise ValueError(f"filter {key!r} must not be empty")
    forbidden = ("|", "::", ",") if item else ("|", "::")
    for bad in forbidden:
        if bad in text:
            raise ValueError(f"filter {key!r} value {text!r} must not contain {bad!r}")
    if text.startswith(":"):  # "key:::x" reads as key "key" or "key:": Credly's split is ambiguous
        raise ValueError(f"filter {key!r} value {text!r} must not start with ':'")
    return text


def _format_value(key: str, spec: FilterSpec, value: Any) -> str:
    if spec.kind is Kind.DATE:
        return format_date(value, key=key)
    if spec.kind is Kind.BOOL:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise ValueError(f"filter {key!r} needs true or false, got {value!r}")
    if spec.kind is Kind.LIST:
        items: list[Any]
        if isinstance(value, str):
            items = [v for v in value.split(",") if v.strip()]
        elif isinstance(value, Iterable) and not isinstance(value, Mapping):
            items = list(value)
        else:
            items = [value]
        if not items:
            raise ValueError(f"filter {key!r} needs at least one value")
        texts = [_text(key, v, item=True) for v in items]
    else:
        texts = [_text(key, value)]
    if spec.choices:
        wrong = [t for t in texts if t not in spec.choices]
        if wrong:
            raise ValueError(f"filter {key!r} accepts {', '.join(spec.choices)}; got {', '.join(wrong)}")
    return ",".join(texts)


def parse_filter(text: str) -> dict[str, str]:
    """Split a ready-made ``key::value|key::value`` string into a dict (values left as text).

    :raises ValueError: a part without ``::``, or a key given twice (one of the two would be lost).
    """
    out: dict[str, str] = {}
    for part in text.split("|"):
        if not part.strip():
            continue
        key, sep, value = part.partition("::")
        if not sep:
            raise ValueError(f"filter part {part!r} is not in the form key::value")
        key = key.strip()
        if key in out:
            raise ValueError(f"filter key {key!r} is given twice; list values are comma-separated")
        out[key] = value
    return out


def build_filter(filters: Mapping[str, Any] | str | None, allowed: Mapping[str, FilterSpec]) -> str | None:
    """Build a Credly ``filter`` parameter.

    :param filters: ``{key: value}`` (``None`` values are left out), or an already-written filter string
        (validated the same way).
    :param allowed: the endpoint's documented keys (e.g. :data:`BADGE_FILTERS`).
    :return: the filter string, or ``None`` when there is nothing to filter on.
    :raises ValueError: an unknown key or a value of the wrong kind.
    """
    if filters is None:
        return None
    pairs = parse_filter(filters) if isinstance(filters, str) else filters
    parts = []
    unknown = [k for k in pairs if k not in allowed]
    if unknown:
        raise ValueError(
            f"unknown filter key(s) {', '.join(map(repr, unknown))}; documented keys: {', '.join(allowed)}"
        )
    for key, value in pairs.items():
        if value is None:
            continue
        parts.append(f"{key}::{_format_value(key, allowed[key], value)}")
    return "|".join(parts) or None


def build_sort(sort: str | Iterable[str] | None, allowed: Iterable[str]) -> str | None:
    """Build a Credly ``sort`` parameter from ``"key1|-key2"`` or ``["key1", "-key2"]``.

    Each key is a documented key with at most one leading ``-`` (descending).

    :raises ValueError: an unknown or malformed key, or a key given twice.
    """
    if sort is None:
        return None
    keys = [k.strip() for k in (sort.split("|") if isinstance(sort, str) else sort) if k and k.strip()]
    allowed = tuple(allowed)
    names = [k[1:] if k.startswith("-") else k for k in keys]
    wrong = [k for k, name in zip(keys, names, strict=True) if name not in allowed]
    if wrong:
        raise ValueError(
            f"unknown sort key(s) {', '.join(map(repr, wrong))}; documented keys: {', '.join(allowed)}"
            " (each at most once prefixed with '-')"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"sort key(s) {', '.join(map(repr, twice))} given twice")
    return "|".join(keys) or None
