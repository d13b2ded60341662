"""The single filter/sort parser used by every list endpoint (``key::value|key::value``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .store import FLAG_PRIVATE, STATE_CODES
from .util import MS_PER_DAY, NONE_DAY, NONE_TS, parse_day

if TYPE_CHECKING:
    from .store import BadgeStore

Predicate = Callable[[int], bool]


class FilterError(ValueError):
    """A malformed ``filter``/``sort`` parameter (rendered as HTTP 400)."""


def parse_pairs(text: str | None) -> list[tuple[str, str]]:
    """Split ``key::value|key::value`` into pairs; raises ``FilterError`` on malformed input."""
    if not text:
        return []
    pairs = []
    for part in text.split("|"):
        key, sep, value = part.partition("::")
        if not sep or not key.strip():
            raise FilterError(f"Invalid filter {part!r}: expected key::value")
        if not value.strip():
            raise FilterError(f"Invalid filter {key!r}: value can't be blank")
        pairs.append((key.strip(), value.strip()))
    return pairs


def parse_sort(text: str | None, allowed: Iterable[str]) -> list[tuple[str, bool]]:
    """Parse ``key|-key`` into ``(key, descending)`` pairs, rejecting unknown keys."""
    if not text:
        return []
    known = set(allowed)
    out = []
    for part in text.split("|"):
        part = part.strip()
        desc = part.startswith("-")
        key = part[1:] if desc else part
        if key not in known:
            raise FilterError(f"Invalid sort key {key!r}; allowed: {', '.join(sorted(known))}")
        out.append((key, desc))
    return out


def apply_sort(
    rows: list[Any], spec: list[tuple[str, bool]], keys: Mapping[str, Callable[[Any], Any]]
) -> None:
    """Stable multi-key in-place sort (the first key of ``spec`` is the primary one)."""
    for name, desc in reversed(spec):
        rows.sort(key=keys[name], reverse=desc)


def split_list(value: str) -> list[str]:
    """Comma list -> non-empty stripped items."""
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass
class BadgeFilter:
    """A compiled badge filter: row predicates plus an optional candidate-row restriction."""

    text: str = ""
    predicates: list[Predicate] = field(default_factory=list)
    candidates: set[int] | None = None
    created_min: int | None = None
    """``created_at_min`` as epoch ms (inclusive): applied by bisecting the ``(created_at, id)`` order."""
    created_below: int | None = None
    """``created_at_max`` as epoch ms of the next day (exclusive)."""

    @property
    def is_empty(self) -> bool:
        """No restriction at all."""
        return (
            not self.predicates
            and self.candidates is None
            and self.created_min is None
            and self.created_below is None
        )

    def match(self, r: int) -> bool:
        """Whether row ``r`` passes every predicate (candidates are handled by the caller)."""
        return all(p(r) for p in self.predicates)

    def restrict(self, rows: Iterable[int]) -> None:
        """Intersect the candidate set with ``rows``."""
        found = set(rows)
        self.candidates = found if self.candidates is None else self.candidates & found


def _day(key: str, value: str) -> int:
    try:
        return parse_day(value)
    except ValueError as exc:
        raise FilterError(f"Invalid value for filter {key!r}: {exc}") from None


def _ts_filter(column: str, is_min: bool, null_matches: bool) -> Callable[[BadgeStore, str, str], Predicate]:
    def build(store: BadgeStore, key: str, value: str) -> Predicate:
        col = getattr(store, column)
        day = _day(key, value)
        if is_min:
            lo = day * MS_PER_DAY
            if null_matches:
                return lambda r: col[r] >= lo or col[r] == NONE_TS
            return lambda r: col[r] >= lo
        hi = (day + 1) * MS_PER_DAY
        return lambda r: NONE_TS < col[r] < hi

    return build


def _day_filter(column: str, is_min: bool, null_matches: bool) -> Callable[[BadgeStore, str, str], Predicate]:
    def build(store: BadgeStore, key: str, value: str) -> Predicate:
        col = getattr(store, column)
        day = _day(key, value)
        if is_min:
            if null_matches:
                return lambda r: col[r] >= day or col[r] == NONE_DAY
            return lambda r: col[r] >= day
        return lambda r: NONE_DAY < col[r] <= day

    return build


def _query(store: BadgeStore, key: str, value: str) -> Predicate:
    needle = value.lower()
    email = store.email
    if needle.startswith("@*."):
        suffix = needle[2:]
        return lambda r: email(r).lower().partition("@")[2].endswith(suffix)
    if needle.startswith("@"):
        return lambda r: email(r).lower().endswith(needle)
    return lambda r: needle in email(r).lower() or needle in store.issued_to(r).lower()


def _state(store: BadgeStore, key: str, value: str) -> Predicate:
    names = split_list(value)
    unknown = [n for n in names if n not in STATE_CODES]
    if unknown or not names:
        raise FilterError(f"Invalid state {', '.join(unknown)!r}; allowed: {', '.join(STATE_CODES)}")
    codes = {STATE_CODES[n] for n in names}
    col = store.state
    return lambda r: col[r] in codes


def _public(store: BadgeStore, key: str, value: str) -> Predicate:
    if value.lower() not in ("true", "false"):
        raise FilterError(f"Invalid value for filter 'public': {value!r} (expected true or false)")
    want_private = value.lower() == "false"
    flags = store.flags
    return lambda r: bool(flags[r] & FLAG_PRIVATE) == want_private


def _template_set(store: BadgeStore, wanted: Callable[[Any], bool]) -> Predicate:
    chosen = {t.index for t in store.templates if wanted(t)}
    col = store.template
    return lambda r: col[r] in chosen


def _template_ids(store: BadgeStore, key: str, value: str) -> Predicate:
    ids = set(split_list(value))
    return _template_set(store, lambda t: t.id in ids)


def _template_name(store: BadgeStore, key: str, value: str) -> Predicate:
    needle = value.lower()
    return _template_set(store, lambda t: needle in t.name.lower())


def _template_any(attr: str) -> Callable[[BadgeStore, str, str], Predicate]:
    def build(store: BadgeStore, key: str, value: str) -> Predicate:
        wanted = {v.lower() for v in split_list(value)}
        return _template_set(store, lambda t: any(x.lower() in wanted for x in getattr(t, attr)))

    return build


def _owner(org_id: str) -> Callable[[BadgeStore, str, str], Predicate]:
    def build(store: BadgeStore, key: str, value: str) -> Predicate:
        ok = org_id in split_list(value)
        return lambda r: ok

    return build


_INDEXED: dict[str, Callable[[BadgeStore, str], list[int]]] = {
    "recipient_email": lambda s, v: s.rows_for_email(v),
    "recipient_email_all": lambda s, v: s.rows_for_email(v),
    "issuer_earner_id": lambda s, v: s.rows_for_issuer_earner_id(v),
    "user_id": lambda s, v: [r for uid in split_list(v) for r in s.rows_for_user(uid)],
}

_BUILDERS: dict[str, Callable[[BadgeStore, str, str], Predicate]] = {
    "query": _query,
    "state": _state,
    "public": _public,
    "badge_template_id": _template_ids,
    "badge_templates[name]": _template_name,
    "badge_templates[reporting_tags]": _template_any("reporting_tags"),
    "badge_templates[skills]": _template_any("skills"),
    "issued_at_min": _ts_filter("issued", True, False),
    "issued_at_max": _ts_filter("issued", False, False),
    "created_at_min": _ts_filter("created", True, False),
    "created_at_max": _ts_filter("created", False, False),
    "expires_at_min": _ts_filter("expires", True, True),
    "expires_at_max": _ts_filter("expires", False, False),
    "state_updated_at_min": _ts_filter("state_updated", True, False),
    "state_updated_at_max": _ts_filter("state_updated", False, False),
    "updated_at_min": _ts_filter("updated", True, False),
    "updated_at_max": _ts_filter("updated", False, False),
    "issued_at_date_min": _day_filter("issued_day", True, False),
    "issued_at_date_max": _day_filter("issued_day", False, False),
    "expires_at_date_min": _day_filter("expires_day", True, True),
    "expires_at_date_max": _day_filter("expires_day", False, False),
}

BADGE_FILTER_KEYS = frozenset([*_BUILDERS, *_INDEXED, "issuer_id", "badge_templates[owner_id]"])
BADGE_SORT_KEYS = (
    "created_at",
    "issued_at",
    "state_updated_at",
    "badge_templates[name]",
    "users[first_name]",
    "users[last_name]",
)


def compile_badge_filter(store: BadgeStore, text: str | None, org_id: str) -> BadgeFilter:
    """Compile a ``filter`` parameter of the badge endpoints; raises ``FilterError``."""
    compiled = BadgeFilter(text=text or "")
    for key, value in parse_pairs(text):
        if key in _INDEXED:
            compiled.restrict(_INDEXED[key](store, value))
        elif key == "created_at_min":  # a range of the cursor order: no scan of the rows before it
            lo = _day(key, value) * MS_PER_DAY
            compiled.created_min = max(lo, compiled.created_min or lo)
        elif key == "created_at_max":
            hi = (_day(key, value) + 1) * MS_PER_DAY
            compiled.created_below = min(hi, compiled.created_below or hi)
        elif key in ("issuer_id", "badge_templates[owner_id]"):
            compiled.predicates.append(_owner(org_id)(store, key, value))
        elif key in _BUILDERS:
            compiled.predicates.append(_BUILDERS[key](store, key, value))
        else:
            raise FilterError(f"Invalid filter key {key!r}; allowed: {', '.join(sorted(BADGE_FILTER_KEYS))}")
    return compiled


def badge_sort_keys(store: BadgeStore) -> dict[str, Callable[[int], Any]]:
    """Sort key functions for ``BADGE_SORT_KEYS``."""
    templates = store.templates
    return {
        "created_at": store.key,
        "issued_at": store.issued.__getitem__,
        "state_updated_at": store.state_updated.__getitem__,
        "badge_templates[name]": lambda r: templates[store.template[r]].name.lower(),
        "users[first_name]": lambda r: store.first_name(r).lower(),
        "users[last_name]": lambda r: store.last_name(r).lower(),
    }
