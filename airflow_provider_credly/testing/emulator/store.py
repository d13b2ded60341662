"""Compact, columnar in-memory badge storage with deterministic seeding.

Seeded rows keep only numeric columns (``array``) plus their id; text fields (names, emails...) are
derived from the row number on demand. Rows created through the API keep their text in a sparse
``extra`` map. ``order`` holds the *listable* rows (neither deleted nor replaced) sorted by
``(created_at, id)``, which is what the cursor endpoint seeks on.
"""

from __future__ import annotations

import bisect
import random
from array import array
from dataclasses import dataclass, field
from typing import Any

from .util import MS_PER_DAY, NONE_DAY, NONE_TS, bulk_uuids, stable_uuid, user_id_for

STATES = ("pending", "accepted", "rejected", "revoked")
PENDING, ACCEPTED, REJECTED, REVOKED = range(4)
STATE_CODES = {name: code for code, name in enumerate(STATES)}
FLAG_DELETED = 1
FLAG_REPLACED = 2
FLAG_PRIVATE = 4
UNLISTED = FLAG_DELETED | FLAG_REPLACED
SEEDED_REVOCATION_REASON = "Revoked by the issuer"

_FIRST = [
    "Alfred",
    "Beatrice",
    "Carlos",
    "Dana",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kara",
    "Liam",
    "Mina",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xia",
    "Yara",
    "Zeno",
    "Ada",
    "Bruno",
    "Chloe",
    "Dario",
]
# two names beyond Latin-1, as real rosters have them: most pages then hold one (a page's Python str would
# be 2 bytes per character; the bulk writers keep the UTF-8 bytes)
_LAST = [
    "Skiles",
    "Nguyễn",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Larsen",
    "Dubois",
    "Łukaszewicz",
    "Moreau",
    "Fischer",
    "Costa",
    "Ivanova",
    "Murphy",
    "Sato",
    "Jensen",
    "Alvarez",
    "Brennan",
    "Chen",
    "Duarte",
    "Eriksen",
]
_MIDDLE = ("Beaker", "Jo", "Lee", "Marie", "Ray")
_COUNTRIES: tuple[tuple[str | None, str | None], ...] = (
    ("United States", "Minnesota"),
    ("Canada", "Ontario"),
    (None, None),
    (None, None),
    ("Germany", None),
)
_TOPICS = [
    "Cloud",
    "Data",
    "Security",
    "Networking",
    "Python",
    "Leadership",
    "Agile",
    "DevOps",
    "AI",
    "Design",
]
_LEVELS = ("Foundations", "Practitioner", "Expert")


def person_name(p: int) -> tuple[str, str]:
    """``(first, last)`` name of seeded person ``p`` (earner / employee number)."""
    return _FIRST[p % len(_FIRST)], _LAST[(p // len(_FIRST)) % len(_LAST)]


@dataclass(slots=True)
class Template:
    """A badge template of the emulated organization."""

    index: int
    id: str
    name: str
    allow_duplicates: bool
    skills: tuple[str, ...]
    reporting_tags: tuple[str, ...]
    created_ms: int
    image_id: str
    alignment_id: str
    badges_count: int = 0
    archived: bool = False
    """An archived template cannot be used to issue new badges (see ``EmulatorState.archive_template``)."""

    @property
    def vanity_slug(self) -> str:
        """URL slug of the template name."""
        return self.name.lower().replace(" ", "-")


@dataclass(slots=True)
class BadgeExtra:
    """Text fields of a badge created through the API (seeded rows derive them)."""

    email: str
    first_name: str
    middle_name: str | None
    last_name: str
    issuer_earner_id: str | None
    locale: str = "en"
    suppress_email: bool = False
    country: str | None = None
    state_or_province: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    group: dict[str, Any] | None = None


def make_templates(seed: int, count: int, start_ms: int) -> list[Template]:
    """Deterministic templates; the first one allows duplicate badges."""
    out = []
    for k in range(count):
        topic, level = _TOPICS[k % len(_TOPICS)], _LEVELS[(k // len(_TOPICS)) % len(_LEVELS)]
        suffix = f" {k // (len(_TOPICS) * len(_LEVELS)) + 1}" if k >= len(_TOPICS) * len(_LEVELS) else ""
        out.append(
            Template(
                index=k,
                id=stable_uuid(seed, "template", k),
                name=f"{topic} {level}{suffix}",
                allow_duplicates=k == 0,
                skills=(f"{topic} Basics", f"{topic} Tooling", "Teamwork" if k % 2 else "Communication"),
                reporting_tags=(topic.lower(), level.lower()),
                created_ms=start_ms - 365 * MS_PER_DAY + k * MS_PER_DAY,
                image_id=stable_uuid(seed, "template-image", k),
                alignment_id=stable_uuid(seed, "alignment", k),
            )
        )
    return out


class BadgeStore:
    """All badges of the emulated organization, row-oriented by integer row number."""

    def __init__(self, *, seed: int, count: int, templates: list[Template], start_ms: int, span_ms: int):
        self.seed = seed
        self.templates = templates
        self.template_by_id = {t.id: t for t in templates}
        self.n_seeded = count
        self.earners = max(1, (count + 2) // 3)
        self.version = 0
        self.deleted_count = 0
        self.extra: dict[int, BadgeExtra] = {}
        self.revocation: dict[int, str] = {}
        self.replaces: dict[int, int] = {}
        self.replacement: dict[int, int] = {}
        self._by_email: dict[str, list[int]] = {}
        self._by_ieid: dict[str, list[int]] = {}
        self._user_emails: dict[str, str] | None = None
        self._generate(count, start_ms, span_ms)

    # ------------------------------------------------------------------ generation
    def _generate(self, n: int, start_ms: int, span_ms: int) -> None:
        ids = bulk_uuids(self.seed, n)
        for k in range(0, n - 1, 2):  # pairs share created_at: keep (created_at, id) order == row order
            if ids[k] > ids[k + 1]:
                ids[k], ids[k + 1] = ids[k + 1], ids[k]
        self.ids: list[str] = ids
        self.index: dict[str, int] = {bid: r for r, bid in enumerate(ids)}
        step = max(2, span_ms // max(1, (n + 1) // 2))
        half = step // 2
        n_templates = max(1, len(self.templates))
        earners = self.earners
        rnd = random.Random(f"badges-{self.seed}").getrandbits
        created, issued, expires = array("q"), array("q"), array("q")
        updated, state_updated = array("q"), array("q")
        issued_day, expires_day = array("i"), array("i")
        state, flags, template = bytearray(n), bytearray(n), array("H")
        jitter = 0
        for i in range(n):
            b = rnd(64)
            if not i & 1:
                jitter = b % half
            c = start_ms + (i >> 1) * step + jitter
            iss = (c // 1000 - ((b >> 16) & 0x3FFFF) % 259_200) * 1000
            roll = (b >> 34) % 100
            st = PENDING if roll < 15 else ACCEPTED if roll < 85 else REJECTED if roll < 90 else REVOKED
            exp = iss + 730 * MS_PER_DAY if (b >> 41) % 10 < 4 else NONE_TS
            su = NONE_TS if st == PENDING else c + (1 + (b >> 45) % 1_728_000) * 1000
            created.append(c)
            issued.append(iss)
            issued_day.append(iss // MS_PER_DAY)
            expires.append(exp)
            expires_day.append(NONE_DAY if exp == NONE_TS else exp // MS_PER_DAY)
            state_updated.append(su)
            updated.append(c if su == NONE_TS else su)
            state[i] = st
            if i % 17 == 16:
                flags[i] = FLAG_PRIVATE
            template.append(((i // earners) * 7 + i % earners) % n_templates)
        self.created, self.issued, self.expires = created, issued, expires
        self.updated, self.state_updated = updated, state_updated
        self.issued_day, self.expires_day = issued_day, expires_day
        self.state, self.flags, self.template = state, flags, template
        counts = [0] * n_templates
        for t in template:
            counts[t] += 1
        for tpl, cnt in zip(self.templates, counts, strict=True):
            tpl.badges_count = cnt
        self.order = array("q", range(n))

    # ------------------------------------------------------------------ accessors
    def key(self, r: int) -> tuple[int, str]:
        """Cursor order key of a row."""
        return self.created[r], self.ids[r]

    def is_listed(self, r: int) -> bool:
        """Neither deleted nor replaced."""
        return not self.flags[r] & UNLISTED

    def is_public(self, r: int) -> bool:
        """``public`` flag of a row."""
        return not self.flags[r] & FLAG_PRIVATE

    def is_deleted(self, r: int) -> bool:
        """Row was deleted."""
        return bool(self.flags[r] & FLAG_DELETED)

    def email(self, r: int) -> str:
        """Recipient email."""
        if r < self.n_seeded:
            return f"earner{r % self.earners}@example.com"
        return self.extra[r].email

    def first_name(self, r: int) -> str:
        """``issued_to_first_name``."""
        return _FIRST[r % self.earners % len(_FIRST)] if r < self.n_seeded else self.extra[r].first_name

    def middle_name(self, r: int) -> str | None:
        """``issued_to_middle_name``."""
        if r < self.n_seeded:
            p = r % self.earners
            return _MIDDLE[p % len(_MIDDLE)] if p % 3 == 0 else None
        return self.extra[r].middle_name

    def last_name(self, r: int) -> str:
        """``issued_to_last_name``."""
        if r < self.n_seeded:
            return _LAST[(r % self.earners // len(_FIRST)) % len(_LAST)]
        return self.extra[r].last_name

    def issued_to(self, r: int) -> str:
        """Full name of the earner."""
        _, first, middle, last, _ = self.person(r)
        return f"{first} {middle} {last}" if middle else f"{first} {last}"

    def person(self, r: int) -> tuple[str, str, str | None, str, str | None]:
        """``(email, first, middle, last, issuer_earner_id)`` in one call (rendering hot path)."""
        if r >= self.n_seeded:
            x = self.extra[r]
            return x.email, x.first_name, x.middle_name, x.last_name, x.issuer_earner_id
        p = r % self.earners
        return (
            f"earner{p}@example.com",
            _FIRST[p % len(_FIRST)],
            _MIDDLE[p % len(_MIDDLE)] if p % 3 == 0 else None,
            _LAST[(p // len(_FIRST)) % len(_LAST)],
            None if p % 10 == 9 else f"E{p}",
        )

    def issuer_earner_id(self, r: int) -> str | None:
        """Issuer's own earner id (``E<n>`` for most seeded earners)."""
        if r < self.n_seeded:
            p = r % self.earners
            return None if p % 10 == 9 else f"E{p}"
        return self.extra[r].issuer_earner_id

    def location(self, r: int) -> tuple[str | None, str | None]:
        """``(country, state_or_province)``."""
        if r < self.n_seeded:
            return _COUNTRIES[r % self.earners % len(_COUNTRIES)]
        x = self.extra[r]
        return x.country, x.state_or_province

    def user_id(self, r: int) -> str:
        """Credly user id (uuid5 of the email)."""
        return user_id_for(self.email(r))

    def state_name(self, r: int) -> str:
        """State name of a row."""
        return STATES[self.state[r]]

    def revocation_reason(self, r: int) -> str | None:
        """Revocation reason (seeded revoked rows get a fixed reason)."""
        reason = self.revocation.get(r)
        if reason is None and self.state[r] == REVOKED:
            return SEEDED_REVOCATION_REASON
        return reason

    def id_of(self, r: int | None) -> str | None:
        """Badge id for an optional row."""
        return None if r is None else self.ids[r]

    # ------------------------------------------------------------------ lookups
    def lookup(self, badge_id: str, *, include_deleted: bool = False) -> int | None:
        """Row of a badge id (``None`` when unknown or deleted)."""
        r = self.index.get(badge_id)
        if r is None or (not include_deleted and self.flags[r] & FLAG_DELETED):
            return None
        return r

    def rows_for_email(self, email: str) -> list[int]:
        """All rows (any status) whose recipient email equals ``email`` case-insensitively."""
        email = email.strip().lower()
        rows = list(self._by_email.get(email, ()))
        if email.startswith("earner") and email.endswith("@example.com"):
            num = email[6:-12]
            if num.isdigit() and str(int(num)) == num and int(num) < self.earners:
                rows.extend(range(int(num), self.n_seeded, self.earners))
        return rows

    def rows_for_issuer_earner_id(self, value: str) -> list[int]:
        """All rows carrying ``issuer_earner_id == value``."""
        rows = list(self._by_ieid.get(value, ()))
        num = value[1:]
        if value.startswith("E") and num.isdigit() and str(int(num)) == num:
            p = int(num)
            if p < self.earners and p % 10 != 9:
                rows.extend(range(p, self.n_seeded, self.earners))
        return rows

    def rows_for_user(self, user_id: str) -> list[int]:
        """All rows of the user with ``user_id`` (lazy reverse index over distinct emails)."""
        if self._user_emails is None:
            index = {
                user_id_for(f"earner{p}@example.com"): f"earner{p}@example.com" for p in range(self.earners)
            }
            for email in self._by_email:
                index[user_id_for(email)] = email
            self._user_emails = index
        found = self._user_emails.get(user_id)
        return self.rows_for_email(found) if found else []

    # ------------------------------------------------------------------ mutation
    def append(
        self,
        extra: BadgeExtra,
        *,
        badge_id: str,
        template: int,
        state: int,
        created_ms: int,
        issued: tuple[int, int],
        expires: tuple[int, int],
        public: bool,
    ) -> int:
        """Add an API-created badge and index it; returns its row."""
        r = len(self.ids)
        self.ids.append(badge_id)
        self.index[badge_id] = r
        self.created.append(created_ms)
        self.issued.append(issued[0])
        self.issued_day.append(issued[1])
        self.expires.append(expires[0])
        self.expires_day.append(expires[1])
        self.updated.append(created_ms)
        self.state_updated.append(NONE_TS if state == PENDING else created_ms)
        self.state.append(state)
        self.flags.append(0 if public else FLAG_PRIVATE)
        self.template.append(template)
        self.extra[r] = extra
        email = extra.email.strip().lower()
        self._by_email.setdefault(email, []).append(r)
        if extra.issuer_earner_id:
            self._by_ieid.setdefault(extra.issuer_earner_id, []).append(r)
        if self._user_emails is not None:
            self._user_emails[user_id_for(email)] = email
        self.templates[template].badges_count += 1
        bisect.insort(self.order, r, key=self.key)
        self.version += 1
        return r

    def set_state(self, r: int, state: int, now_ms: int) -> None:
        """Change the state of a row, stamping ``state_updated_at``/``updated_at``."""
        self.state[r] = state
        self.state_updated[r] = now_ms
        self.updated[r] = max(now_ms, self.updated[r])
        self.version += 1

    def unlist(self, r: int) -> None:
        """Remove a row from the listing order (it stays addressable by id)."""
        pos = bisect.bisect_left(self.order, self.key(r), key=self.key)
        if pos < len(self.order) and self.order[pos] == r:
            del self.order[pos]
        self.version += 1

    def mark_replaced(self, r: int, new_r: int, now_ms: int) -> None:
        """Link ``r`` to its replacement and hide it from listings."""
        self.replacement[r] = new_r
        self.replaces[new_r] = r
        self.flags[r] |= FLAG_REPLACED
        self.updated[r] = max(now_ms, self.updated[r])
        self.unlist(r)

    def mark_deleted(self, r: int) -> None:
        """Delete a row (GDPR delete): hidden everywhere, lookups return ``None``."""
        if self.flags[r] & FLAG_DELETED:
            return
        if not self.flags[r] & FLAG_REPLACED:
            self.unlist(r)
        self.flags[r] |= FLAG_DELETED
        self.deleted_count += 1
        self.templates[self.template[r]].badges_count -= 1
        self.version += 1

    def current_of(self, r: int) -> int:
        """Newest row of the replacement chain containing ``r``."""
        while r in self.replacement:
            r = self.replacement[r]
        return r

    def chain_of(self, r: int) -> list[int]:
        """``r`` and all the rows it (transitively) replaces."""
        chain = [r]
        while chain[-1] in self.replaces:
            chain.append(self.replaces[chain[-1]])
        return chain

    def count(self, *, include_deleted: bool = False) -> int:
        """Number of rows, by default excluding deleted ones."""
        if include_deleted:
            return len(self.ids)
        return len(self.ids) - self.deleted_count
