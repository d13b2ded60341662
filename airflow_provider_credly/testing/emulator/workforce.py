"""Workforce data (employees, external badges) and its business rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import MSG_BLANK, MSG_INVALID, MSG_LIST_TYPE, MSG_STATUSES, MSG_TAKEN, validation_error
from .filters import FilterError, apply_sort, parse_pairs, parse_sort, split_list
from .util import EMAIL_RE, NONE_TS, stable_uuid, text_field

EMPLOYEE_STATES = ("created", "pending", "accepted", "rejected")
INVITABLE_STATES = ("created", "pending", "rejected")
EMPLOYEE_SORT_KEYS = ("email", "created_at", "first_name", "last_name", "name")
EMPLOYEE_FILTER_KEYS = ("name_or_email", "employee_state", "team")
_TEAMS = ("Development", "Data", "Sales", "Support")
_DEPARTMENTS = ("Engineering", "Engineering", "Sales", "Operations")


@dataclass(slots=True)
class Employee:
    """One employee of the workforce organization."""

    id: str
    email: str
    first_name: str
    last_name: str
    created_ms: int
    employee_state: str = "created"
    state_updated_ms: int = NONE_TS
    invited_ms: int = NONE_TS
    team: str | None = None
    external_id: str | None = None
    position_title: str | None = None
    manager_first_name: str | None = None
    manager_last_name: str | None = None
    manager_external_id: str | None = None
    country: str | None = None
    zip_code: str | None = None
    state_or_province: str | None = None
    department: str | None = None
    organization_level_1: str | None = None
    organization_level_2: str | None = None
    organization_level_3: str | None = None
    job_family: str | None = None


EDITABLE_FIELDS = tuple(
    f.name
    for f in fields(Employee)
    if f.name not in ("id", "email", "created_ms", "employee_state", "state_updated_ms", "invited_ms")
)


class Workforce:
    """Employees indexed by uuid, email and external id."""

    def __init__(self, seed: int, count: int, start_ms: int, names: Callable[[int], tuple[str, str]]):
        self.seed = seed
        self._created = 0
        self.version = 0
        self._cache: dict[tuple[str, str], tuple[int, list[Employee]]] = {}
        self.by_id: dict[str, Employee] = {}
        self.by_email: dict[str, Employee] = {}
        self.by_external: dict[str, Employee] = {}
        self.external_badges: list[tuple[str, dict[str, Any]]] = []
        for j in range(count):
            first, last = names(j)
            created = start_ms + j * 3_600_000
            emp = Employee(
                id=self.new_id(),
                email=f"earner{j}@example.com",
                first_name=first,
                last_name=last,
                created_ms=created,
                employee_state=EMPLOYEE_STATES[j % 4] if j % 5 else "accepted",
                state_updated_ms=created,
                team=_TEAMS[j % len(_TEAMS)],
                external_id=None if j % 7 == 6 else f"EMP-{j:05d}",
                position_title="Engineer" if j % 2 else "Analyst",
                department=_DEPARTMENTS[j % len(_DEPARTMENTS)],
                country="United States" if j % 3 == 0 else None,
            )
            self.add(emp)
            if j % 3 == 0:
                self.external_badges.append((emp.id, _external_badge(seed, j)))

    def new_id(self) -> str:
        """Deterministic id for the next employee."""
        self._created += 1
        return stable_uuid(self.seed, "employee", self._created)

    def add(self, emp: Employee) -> None:
        """Index an employee."""
        self.version += 1
        self.by_id[emp.id] = emp
        self.by_email[emp.email.lower()] = emp
        if emp.external_id:
            self.by_external[emp.external_id] = emp

    def remove(self, emp: Employee) -> None:
        """Delete an employee from every index."""
        self.version += 1
        del self.by_id[emp.id]
        self.by_email.pop(emp.email.lower(), None)
        if emp.external_id:
            self.by_external.pop(emp.external_id, None)
        self.external_badges = [x for x in self.external_badges if x[0] != emp.id]

    def find(self, key: str) -> Employee | None:
        """Look up by uuid, email or external id."""
        return self.by_id.get(key) or self.by_email.get(key.lower()) or self.by_external.get(key)

    def query(self, filter_text: str | None, sort_text: str | None) -> list[Employee]:
        """Filtered and sorted employees (default: ``created_at`` ascending)."""
        preds = [_employee_predicate(key, value) for key, value in parse_pairs(filter_text)]
        spec = parse_sort(sort_text, EMPLOYEE_SORT_KEYS)
        cache_key = (filter_text or "", sort_text or "")
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        rows = [e for e in self.by_id.values() if all(p(e) for p in preds)]
        rows.sort(key=lambda e: (e.created_ms, e.id))
        keys: dict[str, Callable[[Any], Any]] = {
            "email": lambda e: e.email.lower(),
            "created_at": lambda e: e.created_ms,
            "first_name": lambda e: e.first_name.lower(),
            "last_name": lambda e: e.last_name.lower(),
            "name": lambda e: f"{e.first_name} {e.last_name}".lower(),  # the reference's "-name" example
        }
        apply_sort(rows, spec, keys)
        if len(self._cache) >= 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[cache_key] = (self.version, rows)
        return rows

    def create(self, payload: Mapping[str, Any], now_ms: int) -> Employee:
        """Validate and add an employee (state ``created``); raises ``EmulatorRefusal``."""
        errors = [(n, MSG_BLANK) for n in ("email", "first_name", "last_name") if not text_field(payload, n)]
        email = text_field(payload, "email") or ""
        if email and not EMAIL_RE.match(email):
            errors.append(("email", MSG_INVALID))
        elif email.lower() in self.by_email:
            errors.append(("email", MSG_TAKEN))
        self._check_external_id(payload, None, errors)
        if errors:
            raise validation_error(errors)
        emp = Employee(id=self.new_id(), email=email, first_name="", last_name="", created_ms=now_ms)
        emp.state_updated_ms = now_ms
        self._apply(emp, payload)
        self.add(emp)
        return emp

    def update(self, emp: Employee, payload: Mapping[str, Any]) -> Employee:
        """Validate and apply an update (email is immutable); raises ``EmulatorRefusal``."""
        blank = [
            (n, MSG_BLANK) for n in ("first_name", "last_name") if n in payload and not text_field(payload, n)
        ]
        self._check_external_id(payload, emp, blank)
        if blank:
            raise validation_error(blank)
        self._apply(emp, payload)
        return emp

    def _check_external_id(self, payload: Mapping[str, Any], emp: Employee | None, errors: list[Any]) -> None:
        other = self.by_external.get(text_field(payload, "external_id") or "")
        if other is not None and other is not emp:
            errors.append(("external_id", MSG_TAKEN))

    def _apply(self, emp: Employee, payload: Mapping[str, Any]) -> None:
        self.version += 1
        for name in EDITABLE_FIELDS:
            if name not in payload:
                continue
            value = None if payload[name] in (None, "") else str(payload[name]).strip()
            if name == "external_id":
                if emp.external_id:
                    self.by_external.pop(emp.external_id, None)
                if value:
                    self.by_external[value] = emp
            setattr(emp, name, value)

    def invite(self, payload: Mapping[str, Any], now_ms: int) -> int:
        """``send_invitations``: stamp ``last_invitation_sent_at``, move ``created`` -> ``pending``."""
        ids, list_type = payload.get("employee_list"), payload.get("list_type")
        statuses = payload.get("statuses") or list(INVITABLE_STATES)
        errors = []
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            errors.append(("employee_list", MSG_INVALID))
        if ids is not None and list_type not in ("email", "external_id"):
            errors.append(("list_type", MSG_LIST_TYPE))
        if not isinstance(statuses, list) or not set(statuses) <= set(INVITABLE_STATES):
            errors.append(("statuses", MSG_STATUSES))
        if errors:
            raise validation_error(errors)
        if ids is None:
            pool: Iterable[Employee] = list(self.by_id.values())
        elif list_type == "email":
            pool = [e for e in (self.by_email.get(i.lower()) for i in ids) if e]
        else:
            pool = [e for e in (self.by_external.get(i) for i in ids) if e]
        self.version += 1
        for emp in pool:
            if emp.employee_state in statuses:
                emp.invited_ms = now_ms
                if emp.employee_state == "created":
                    emp.employee_state, emp.state_updated_ms = "pending", now_ms
        return now_ms


def _employee_predicate(key: str, value: str) -> Callable[[Employee], bool]:
    if key == "name_or_email":
        needle = value.lower()
        return lambda e: needle in e.email.lower() or needle in f"{e.first_name} {e.last_name}".lower()
    if key == "employee_state":
        states = split_list(value)
        if not states or any(s not in EMPLOYEE_STATES for s in states):
            raise FilterError(f"Invalid employee_state {value!r}; allowed: {', '.join(EMPLOYEE_STATES)}")
        return lambda e: e.employee_state in states
    if key == "team":
        team = value.lower()
        return lambda e: (e.team or "").lower() == team
    raise FilterError(f"Invalid filter key {key!r}; allowed: {', '.join(EMPLOYEE_FILTER_KEYS)}")


def _external_badge(seed: int, j: int) -> dict[str, Any]:
    return {
        "type": "OpenBadge",
        "badge_name": f"External Certificate {j % 5 + 1}",
        "badge_description": "An external credential earned outside Credly.",
        "credential_number": f"{10000 + j}",
        "badge_criteria": {
            "id": f"https://example.edu/criterias/{j:04d}",
            "narrative": "Earners completed the external program.",
        },
        "issuer_name": "Example University",
        "issued_at": "2023-04-01T13:12:40.000Z",
        "issued_at_date": "2023-04-01",
        "expires_at": None,
        "expires_at_date": None,
        "badge_url": f"https://example.edu/credentials/{j:04d}",
        "badge_id": f"https://example.edu/credentials/{j:04d}",
        "credly_record_id": stable_uuid(seed, "external-badge", j),
        "refreshed_at": "2024-09-04T03:33:36.455Z",
        "skills": [{"name": "Skill 1"}, {"name": "Skill 2"}],
        "verification_status": {"verified": j % 2 == 0},
        "image_url": "https://cdn.example.com/path/to/image.png",
    }
