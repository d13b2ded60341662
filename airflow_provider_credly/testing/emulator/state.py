"""Emulator state: one organization, its badges, employees and events, plus the business rules."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import render
from .errors import (
    MSG_ALREADY_REPLACED,
    MSG_ALREADY_REVOKED,
    MSG_BLANK,
    MSG_DELETE_REPLACED,
    MSG_DUPLICATE_BADGE,
    MSG_EMAIL_CHANGE_NOT_PENDING,
    MSG_EXPIRES_BEFORE_ISSUED,
    MSG_INVALID,
    MSG_REVOKE_REPLACED,
    MSG_TEMPLATE_ARCHIVED,
    MSG_TEMPLATE_NOT_FOUND,
    EmulatorRefusal,
    Stats,
    not_found,
    validation_error,
)
from .faults import OddValues
from .filters import (
    BADGE_SORT_KEYS,
    BadgeFilter,
    apply_sort,
    badge_sort_keys,
    compile_badge_filter,
    parse_sort,
)
from .org import seed_org
from .payloads import LOCALES, parse_evidence, parse_expires
from .store import (
    ACCEPTED,
    PENDING,
    REVOKED,
    STATE_CODES,
    BadgeExtra,
    BadgeStore,
    Template,
    make_templates,
    person_name,
)
from .util import (
    EMAIL_RE,
    NONE_TS,
    iso_ms,
    parse_timestamp,
    stable_uuid,
    text_field,
    to_ms,
    utc_now,
)
from .workforce import Employee, Workforce

_ORG_FIELDS = [
    "name",
    "website_url",
    "webhook_url",
    "location",
    "zip_or_postal_code",
    "contact_email",
    "legal_contact_email",
    "organization_type",
    "bio",
    "twitter_url",
    "facebook_url",
    "city",
    "state_or_province",
    "country",
    "address",
    "hide_subscription",
]


_QUICK_FIELDS: dict[str, Callable[[BadgeStore, int], Any]] = {
    "id": lambda s, r: s.ids[r],
    "state": lambda s, r: s.state_name(r),
    "recipient_email": lambda s, r: s.email(r),
    "issuer_earner_id": lambda s, r: s.issuer_earner_id(r),
    "badge_template_id": lambda s, r: s.templates[s.template[r]].id,
    "public": lambda s, r: s.is_public(r),
    "replaces_badge_id": lambda s, r: s.id_of(s.replaces.get(r)),
    "replacement_badge_id": lambda s, r: s.id_of(s.replacement.get(r)),
}


@dataclass(slots=True)
class Event:
    """An organization event (``badge.created``...)."""

    id: str
    event_type: str
    organization_id: str
    occurred_ms: int
    payload: dict[str, Any] = field(default_factory=dict)


TOKEN_PERMISSIONS = ("read", "write", "delete")


@dataclass(slots=True)
class AuthToken:
    """An authorization token of the organization (listed in clear text, as Credly does).

    A token lacking ``read``/``write``/``delete`` is refused (403) on GET, POST/PUT and DELETE requests.
    """

    id: str
    token: str
    created_ms: int
    description: str | None = None
    read_enabled: bool = True
    write_enabled: bool = True
    delete_enabled: bool = True

    def allows(self, method: str) -> bool:
        """Whether this token may send ``method``."""
        if method == "DELETE":
            return self.delete_enabled
        if method in ("POST", "PUT", "PATCH"):
            return self.write_enabled
        return self.read_enabled


class EmulatorState:
    """All data of the emulated Credly organization. Every public method is thread-safe.

    :param token_age_days: how long before the emulator's start the connection's token (``token``) was
        created (its ``created_at`` in ``GET .../authorization_tokens``).
    :param token_permissions: what that token may do: any of ``read``, ``write``, ``delete``.
    """

    def __init__(
        self,
        seed: int = 1,
        badges: int = 200,
        employees: int = 50,
        templates: int = 20,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        clock: Callable[[], datetime] | None = None,
        *,
        token: str | None = None,
        hv_page_size: int = 50,
        span_days: int = 730,
        max_page: int | None = None,
        token_age_days: float = 10.0,
        token_permissions: Iterable[str] = TOKEN_PERMISSIONS,
    ) -> None:
        self.seed, self.n_badges, self.n_employees, self.n_templates = seed, badges, employees, templates
        self.start, self.span_days, self.max_page = start, span_days, max_page
        self.hv_page_size = hv_page_size
        self.clock: Callable[[], datetime] = clock or utc_now
        self.lock = threading.RLock()
        self.stats = Stats()
        #: the records the badge renders give odd values (set by the server from its ``odd_values_rate``
        #: knob; ``None``: none)
        self.odd_values: OddValues | None = None
        self.org_id = stable_uuid(seed, "organization")
        self.token = token or "emu" + stable_uuid(seed, "token").replace("-", "")
        self.token_id = stable_uuid(seed, "token-id")
        self.token_age_days = float(token_age_days)
        self.token_permissions = frozenset(token_permissions)
        unknown = self.token_permissions - set(TOKEN_PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown token permission(s) {sorted(unknown)}; use {TOKEN_PERMISSIONS}")
        self._build()

    def _build(self) -> None:
        start_ms = to_ms(self.start)
        self.org: dict[str, Any] = seed_org(self.org_id)
        self.store = BadgeStore(
            seed=self.seed,
            count=self.n_badges,
            templates=make_templates(self.seed, self.n_templates, start_ms),
            start_ms=start_ms,
            span_ms=self.span_days * 86_400_000,
        )
        self.workforce = Workforce(self.seed, self.n_employees, start_ms, person_name)
        self.events: list[Event] = []
        self.render_cache: dict[tuple[Any, ...], Any] = {}
        self._list_cache: OrderedDict[tuple[str, str], tuple[int, list[int]]] = OrderedDict()
        self._ids = 0
        self.tokens: list[AuthToken] = self._seed_tokens()

    def _seed_tokens(self) -> list[AuthToken]:
        """The connection's token first, then two others (an old one, a read-only one) it must not be
        mistaken for."""
        now = self.now_ms()
        perms = self.token_permissions
        own = AuthToken(
            self.token_id,
            self.token,
            now - round(self.token_age_days * 86_400_000),
            "Emulator token",
            read_enabled="read" in perms,
            write_enabled="write" in perms,
            delete_enabled="delete" in perms,
        )
        others = [
            AuthToken(
                stable_uuid(self.seed, "token-id", n),
                "emu" + stable_uuid(self.seed, "token", n).replace("-", ""),
                now - days * 86_400_000,
                description,
                write_enabled=write,
                delete_enabled=write,
            )
            for n, days, description, write in ((2, 170, "Old integration", True), (3, 3, "Reporting", False))
        ]
        return [own, *others]

    def add_token(
        self,
        token: str,
        *,
        age_days: float = 0.0,
        permissions: Iterable[str] = TOKEN_PERMISSIONS,
        description: str | None = None,
    ) -> AuthToken:
        """Add an authorization token (usable at once) created ``age_days`` ago."""
        perms = frozenset(permissions)
        with self.lock:
            record = AuthToken(
                self._new_id("token"),
                token,
                self.now_ms() - round(age_days * 86_400_000),
                description,
                read_enabled="read" in perms,
                write_enabled="write" in perms,
                delete_enabled="delete" in perms,
            )
            self.tokens.append(record)
            return record

    def token_for(self, value: str) -> AuthToken | None:
        """The listed token with this value, if any."""
        return next((t for t in self.tokens if t.token == value), None)

    def reset(self) -> None:
        """Regenerate the seeded data and zero the counters."""
        with self.lock:
            self._build()
            self.stats.reset()

    # ------------------------------------------------------------------ helpers
    def now_ms(self) -> int:
        """Emulator clock in epoch ms."""
        return to_ms(self.clock())

    def _new_id(self, kind: str) -> str:
        self._ids += 1
        return stable_uuid(self.seed, kind, self._ids, "api")

    @property
    def issue_count(self) -> int:
        """Badges actually created by ``POST /badges`` (whatever response the client saw)."""
        return self.stats.events["badges_issued"]

    def request_count(self, method: str, kind: str) -> int:
        """Requests received for a route kind, e.g. ``("POST", "badges.create")``."""
        return self.stats.by_route[(method, kind)]

    @property
    def templates(self) -> list[Template]:
        """Badge templates (``.id``, ``.name``, ``.allow_duplicates``...)."""
        return self.store.templates

    def _row(self, badge_id: str) -> int:
        r = self.store.lookup(badge_id)
        if r is None:
            raise not_found("Badge")
        return r

    def _event(self, event_type: str, **payload: Any) -> None:
        self.events.append(Event(self._new_id("event"), event_type, self.org_id, self.now_ms(), payload))

    # ------------------------------------------------------------------ badge reads
    def badges_count(self, include_deleted: bool = False) -> int:
        """Number of badges (replaced ones included; deleted ones only on request)."""
        with self.lock:
            return self.store.count(include_deleted=include_deleted)

    def get_badge(self, badge_id: str, include_deleted: bool = False) -> dict[str, Any] | None:
        """Full render of a badge, or ``None``."""
        with self.lock:
            r = self.store.lookup(badge_id, include_deleted=include_deleted)
            return None if r is None else render.badge_full(self, r)

    def find_badges(self, **field_equals: Any) -> list[dict[str, Any]]:
        """Full renders of non-deleted badges (replaced ones included) whose fields equal the values.

        Besides rendered fields, ``badge_template_id`` and ``user_id`` are accepted. Cheap fields are
        checked on the columnar store first, so this stays usable on large datasets.
        """
        with self.lock:
            store = self.store
            rows: Any = range(len(store.ids))
            if "recipient_email" in field_equals:
                rows = sorted(set(store.rows_for_email(str(field_equals["recipient_email"]))))
            quick = {k: v for k, v in field_equals.items() if k in _QUICK_FIELDS}
            out = []
            for r in rows:
                if store.is_deleted(r) or any(_QUICK_FIELDS[k](store, r) != v for k, v in quick.items()):
                    continue
                doc = render.badge_full(self, r)
                doc["badge_template_id"] = doc["badge_template"]["id"]
                doc["user_id"] = doc["user"]["id"]
                if all(doc.get(k) == v for k, v in field_equals.items()):
                    out.append(doc)
            return out

    def list_badges(
        self, filter_text: str | None, sort_text: str | None, page: int, per: int
    ) -> tuple[list[int], int]:
        """Rows of one page of ``GET /badges`` and the total count (default sort ``-created_at``)."""
        with self.lock:
            store = self.store
            spec = parse_sort(sort_text, BADGE_SORT_KEYS) or [("created_at", True)]
            flt = compile_badge_filter(store, filter_text, self.org_id)
            start = (page - 1) * per
            if flt.is_empty and len(spec) == 1 and spec[0][0] == "created_at":
                order, total = store.order, len(store.order)
                if spec[0][1]:
                    return [order[total - 1 - i] for i in range(start, min(start + per, total))], total
                return list(order[start : start + per]), total
            key = (flt.text, sort_text or "")
            hit = self._list_cache.get(key)
            if hit is not None and hit[0] == store.version:
                rows = hit[1]
            else:
                rows = self._matching(flt)
                if len(spec) == 1 and spec[0][0] == "created_at":  # already in (created_at, id) order
                    if spec[0][1]:
                        rows.reverse()
                else:
                    apply_sort(rows, spec, badge_sort_keys(store))
                self._list_cache[key] = (store.version, rows)
                while len(self._list_cache) > 8:
                    self._list_cache.popitem(last=False)
            return rows[start : start + per], len(rows)

    def _span(self, flt: BadgeFilter) -> tuple[Any, int, int]:
        """The rows in ``(created_at, id)`` order and the positions ``[start, end)`` of the filter's
        created_at range in them (bisected: a created_at slice costs no scan of the rows outside it)."""
        store = self.store
        if flt.candidates is None:
            seq: Any = store.order
        else:
            seq = sorted((r for r in flt.candidates if store.is_listed(r)), key=store.key)
        created = store.created.__getitem__
        start = 0 if flt.created_min is None else bisect.bisect_left(seq, flt.created_min, key=created)
        end = (
            len(seq) if flt.created_below is None else bisect.bisect_left(seq, flt.created_below, key=created)
        )
        return seq, start, max(start, end)

    def _matching(self, flt: BadgeFilter) -> list[int]:
        match = flt.match
        seq, start, end = self._span(flt)
        if not flt.predicates:
            return list(seq[start:end])
        return [r for r in seq[start:end] if match(r)]

    def high_volume_page(
        self, flt: BadgeFilter, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[int], bool]:
        """Rows after cursor key ``after`` in ``(created_at, id)`` order, and whether more exist."""
        with self.lock:
            seq, start, end = self._span(flt)
            pos = start
            if after is not None:
                pos = max(start, bisect.bisect_right(seq, after, lo=start, hi=end, key=self.store.key))
            if not flt.predicates:
                return list(seq[pos : min(pos + limit, end)]), pos + limit < end
            match, rows = flt.match, list[int]()
            for i in range(pos, end):
                r = seq[i]
                if match(r):
                    if len(rows) == limit:
                        return rows, True
                    rows.append(r)
            return rows, False

    # ------------------------------------------------------------------ badge writes
    def issue_badge(self, payload: Mapping[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Issue a badge (same rules as ``POST /badges``); raises ``EmulatorRefusal``."""
        with self.lock:
            return render.badge_full(self, self.issue_badge_row({**(payload or {}), **fields}))

    def issue_badge_row(self, payload: Mapping[str, Any]) -> int:
        """Validate and create a badge; returns its row."""
        with self.lock:
            required = ("recipient_email", "issued_to_first_name", "issued_to_last_name")
            r = self._create(payload, required=required, old=None)
            self.stats.incr("badges_issued")
            self._event("badge.created", badge=render.badge_full(self, r))
            return r

    def replace_badge(
        self, badge_id: str, payload: Mapping[str, Any] | None = None, /, **fields: Any
    ) -> dict[str, Any]:
        """Replace a badge; returns the new badge render."""
        with self.lock:
            return render.badge_full(self, self.replace_badge_row(badge_id, {**(payload or {}), **fields}))

    def replace_badge_row(self, badge_id: str, payload: Mapping[str, Any]) -> int:
        """Validate and replace a badge; returns the new row."""
        with self.lock:
            store = self.store
            old = self._row(badge_id)
            if old in store.replacement:
                current = store.ids[store.current_of(old)]
                raise validation_error([("base", MSG_ALREADY_REPLACED)], {"current_badge_id": current})
            r = self._create(payload, required=(), old=old)
            store.mark_replaced(old, r, self.now_ms())
            self.stats.incr("badges_replaced")
            self._event("badge.replaced", badge=render.badge_full(self, r))
            return r

    def _create(self, payload: Mapping[str, Any], *, required: tuple[str, ...], old: int | None) -> int:
        store = self.store
        if not isinstance(payload, Mapping):
            raise validation_error([("base", "Request body must be a JSON object")])
        errors = [
            (n, MSG_BLANK)
            for n in (*required, "badge_template_id", "issued_at")
            if not text_field(payload, n)
        ]
        blank = {name for name, _ in errors}
        email = text_field(payload, "recipient_email") or (store.email(old) if old is not None else "")
        if "recipient_email" not in blank and not EMAIL_RE.match(email):
            errors.append(("recipient_email", MSG_INVALID))
        if old is not None and email.lower() != store.email(old).lower() and store.state[old] != PENDING:
            errors.append(("recipient_email", MSG_EMAIL_CHANGE_NOT_PENDING))
        template = store.template_by_id.get(text_field(payload, "badge_template_id") or "")
        if template is None and "badge_template_id" not in blank:
            errors.append(("badge_template_id", MSG_TEMPLATE_NOT_FOUND))
        issued = (0, 0)
        if "issued_at" not in blank:
            try:
                issued = parse_timestamp(payload["issued_at"])
            except ValueError:
                errors.append(("issued_at", MSG_INVALID))
        previous = None if old is None else (store.expires[old], store.expires_day[old])
        expires = parse_expires(payload, previous, errors)
        dates_ok = not any(name in ("issued_at", "expires_at") for name, _ in errors)
        if dates_ok and "expires_at" in payload and expires[0] != NONE_TS and expires[0] < issued[0]:
            errors.append(("expires_at", MSG_EXPIRES_BEFORE_ISSUED))
        locale = payload.get("locale") or "en"
        if locale not in LOCALES:
            errors.append(("locale", MSG_INVALID))
        evidence = parse_evidence(payload.get("evidence"), errors, lambda: self._new_id("evidence"))
        if template is not None and template.archived and old is None:
            errors.append(("base", MSG_TEMPLATE_ARCHIVED))
        if errors or template is None:
            raise validation_error(errors)
        ieid = payload.get("issuer_earner_id")
        ieid = None if ieid in (None, "") else str(ieid)
        if not template.allow_duplicates and self._is_duplicate(template.index, email, ieid, old):
            raise validation_error([("user", MSG_DUPLICATE_BADGE)])
        group = payload.get("issuer_earner_group")
        extra = BadgeExtra(
            email=email,
            first_name=text_field(payload, "issued_to_first_name")
            or (store.first_name(old) if old is not None else ""),
            middle_name=text_field(payload, "issued_to_middle_name"),
            last_name=text_field(payload, "issued_to_last_name")
            or (store.last_name(old) if old is not None else ""),
            issuer_earner_id=ieid,
            locale=locale,
            suppress_email=bool(payload.get("suppress_badge_notification_email")),
            country=text_field(payload, "country_name"),
            state_or_province=text_field(payload, "state_or_province"),
            evidence=evidence,
            group={"id": stable_uuid(self.seed, "group", str(group)), **group}
            if isinstance(group, dict)
            else None,
        )
        state = PENDING if old is None or store.state[old] not in (PENDING, ACCEPTED) else store.state[old]
        return store.append(
            extra,
            badge_id=self._new_id("badge"),
            template=template.index,
            state=state,
            created_ms=self.now_ms(),
            issued=issued,
            expires=expires,
            public=True,
        )

    def archive_template(self, template_id: str, archived: bool = True) -> None:
        """Archive a template (or bring it back): an archived one refuses new badges with a 422."""
        with self.lock:
            self.store.template_by_id[template_id].archived = archived
            self.render_cache.clear()

    def _is_duplicate(self, template: int, email: str, ieid: str | None, old: int | None) -> bool:
        store = self.store
        rows = store.rows_for_email(email) + (store.rows_for_issuer_earner_id(ieid) if ieid else [])
        return any(
            store.template[r] == template and store.is_listed(r) and store.state[r] != REVOKED and r != old
            for r in rows
        )

    def revoke_badge(self, badge_id: str, reason: str | None = None, **payload: Any) -> dict[str, Any]:
        """Revoke a badge; raises ``EmulatorRefusal``."""
        with self.lock:
            return render.badge_full(self, self.revoke_badge_row(badge_id, {"reason": reason, **payload}))

    def revoke_badge_row(self, badge_id: str, payload: Mapping[str, Any]) -> int:
        """Validate and revoke; returns the row."""
        with self.lock:
            store = self.store
            r = self._row(badge_id)
            if r in store.replacement:
                current = store.ids[store.current_of(r)]
                raise validation_error([("base", MSG_REVOKE_REPLACED)], {"current_badge_id": current})
            if store.state[r] == REVOKED:
                raise validation_error([("base", MSG_ALREADY_REVOKED)])
            reason = text_field(payload, "reason") if isinstance(payload, Mapping) else None
            if reason is None:
                raise validation_error([("reason", MSG_BLANK)])
            store.revocation[r] = reason
            store.set_state(r, REVOKED, self.now_ms())
            self.stats.incr("badges_revoked")
            self._event("badge.revoked", badge=render.badge_full(self, r))
            return r

    def delete_badge(self, badge_id: str) -> None:
        """Delete a badge and every version it replaced; raises ``EmulatorRefusal``."""
        with self.lock:
            store = self.store
            r = self._row(badge_id)
            if r in store.replacement:
                raise EmulatorRefusal(422, {"data": {"message": MSG_DELETE_REPLACED}, "metadata": None})
            snapshot = render.badge_full(self, r)
            for row in store.chain_of(r):
                store.mark_deleted(row)
            self.stats.incr("badges_deleted")
            self._event("badge.deleted", badge=snapshot)

    def set_badge_state(self, badge_id: str, state: str) -> dict[str, Any]:
        """Simulate the earner (``accepted``/``rejected``) or any other state change."""
        with self.lock:
            r = self._row(badge_id)
            if state not in STATE_CODES:
                raise ValueError(f"unknown state {state!r}")
            self.store.set_state(r, STATE_CODES[state], self.now_ms())
            badge = render.badge_full(self, r)
            # what Credly's webhooks call an earner accepting or rejecting a badge
            self._event("badge.state.changed", badge=badge)
            return badge

    # ------------------------------------------------------------------ organization & events
    def update_org(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /organizations/<id>``: update known fields."""
        with self.lock:
            for name in _ORG_FIELDS:
                if name in payload:
                    self.org[name] = payload[name]
            if isinstance(payload.get("photo"), str):
                self.org["photo_url"] = payload["photo"]
            self.org["updated_at"] = iso_ms(self.now_ms())
            self.render_cache.clear()
            return dict(self.org)

    def get_event(self, event_id: str) -> Event:
        """Event by id; raises 404."""
        with self.lock:
            for ev in self.events:
                if ev.id == event_id:
                    return ev
            raise not_found("Event")

    # ------------------------------------------------------------------ employees
    @property
    def employees(self) -> list[dict[str, Any]]:
        """Renders of all employees (creation order)."""
        with self.lock:
            return [render.employee(e) for e in self.workforce.by_id.values()]

    def get_employee(self, key: str) -> dict[str, Any] | None:
        """Employee render by uuid, email or external id."""
        with self.lock:
            emp = self.workforce.find(key)
            return None if emp is None else render.employee(emp)

    def employee(self, key: str) -> Employee:
        """Employee record by uuid, email or external id; raises 404."""
        emp = self.workforce.find(key)
        if emp is None:
            raise not_found("Employee")
        return emp

    def add_employee(self, email: str, first_name: str, last_name: str, **fields: Any) -> dict[str, Any]:
        """Create an employee (same rules as ``POST /employees``)."""
        payload = {"email": email, "first_name": first_name, "last_name": last_name, **fields}
        return render.employee(self.create_employee(payload))

    def create_employee(self, payload: Mapping[str, Any]) -> Employee:
        """Validate and create an employee; raises ``EmulatorRefusal``."""
        with self.lock:
            return self.workforce.create(payload, self.now_ms())

    def update_employee(self, key: str, payload: Mapping[str, Any]) -> Employee:
        """Validate and update an employee; raises ``EmulatorRefusal``."""
        with self.lock:
            return self.workforce.update(self.employee(key), payload)

    def delete_employee(self, key: str) -> None:
        """Remove an employee; raises 404."""
        with self.lock:
            self.workforce.remove(self.employee(key))

    def send_invitations(self, payload: Mapping[str, Any]) -> str:
        """Invite employees; returns ``resend_start``. Raises ``EmulatorRefusal`` on bad input."""
        with self.lock:
            return iso_ms(self.workforce.invite(payload, self.now_ms())) or ""

    def employee_badge_rows(self, emp: Employee) -> list[int]:
        """Listed badges of an employee's email, oldest first."""
        store = self.store
        return sorted((r for r in set(store.rows_for_email(emp.email)) if store.is_listed(r)), key=store.key)
