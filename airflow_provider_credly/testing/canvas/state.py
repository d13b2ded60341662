"""In-memory data of the Canvas Credentials emulator: users, OAuth tokens, issuers, badge classes and
assertions, with the list semantics of API v2 (revoked/expired left out unless asked, a stable cursor).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_credly.testing.emulator.render import ODD_TEXT, odd_number, odd_timestamps

UTC = UTC
#: the timestamp fields of an assertion that ``odd_values_rate`` reshapes
ODD_ASSERTION_TIMESTAMPS = ("issuedOn", "createdAt", "expires")
DUPLICATE_AWARD_MESSAGE = "A previous award of this badge already exists for this recipient."


def iso(when: datetime) -> str:
    """``2025-05-25T21:31:10.577Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` allowed; naive = UTC); raises ``ValueError``."""
    parsed = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def entity_id(rng: random.Random) -> str:
    """A 22-character url-safe id like the API's ``entityId``."""
    return base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()[:22]


class CanvasApiError(Exception):
    """An error response: ``status`` and the envelope's fields."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        field_errors: dict[str, list[str]] | None = None,
        validation_errors: list[str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.field_errors = field_errors or {}
        self.validation_errors = validation_errors or []


@dataclass
class Token:
    """An access token and the refresh token issued with it."""

    access: str
    refresh: str
    username: str
    expires_at: float


def odd_assertion(item: dict[str, Any], kind: str, r: int) -> dict[str, Any]:
    """A copy of an assertion with the odd values of ``kind`` (one of the Credly emulator's
    ``ODD_VALUE_KINDS``), meaning what the usual ones do: its timestamps in another shape of the same
    instant; a JSON number for its (text) ``narrative``; its ``recipient.plaintextIdentity`` plus
    ``ODD_TEXT`` (``stress`` and ``escaped`` alike: the emulator sends UTF-8, as Badgr does); ``r`` is the
    assertion's :meth:`CanvasState.sequence`."""
    doc = copy.deepcopy(item)
    if kind == "number":
        doc["narrative"] = odd_number(r)
    elif kind in ("stress", "escaped"):
        doc["recipient"]["plaintextIdentity"] += ODD_TEXT
    else:
        odd_timestamps(doc, ODD_ASSERTION_TIMESTAMPS, kind)
    return doc


@dataclass
class CanvasState:
    """Everything the emulator serves. Build it with :meth:`seeded`; read it with the accessors.

    :ivar token_lifetime: seconds an access token lives (short values exercise refresh).
    :ivar clock: wall clock (seconds) used for token expiry and ``createdAt``.
    """

    users: dict[str, str] = field(default_factory=lambda: {"admin@example.edu": "emulator-password"})
    token_lifetime: float = 3600.0
    issue_refresh_tokens: bool = True
    seed: int = 0
    clock: Callable[[], float] = time.time
    issuers: dict[str, dict[str, Any]] = field(default_factory=dict)
    badge_classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    assertions: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    notified: list[str] = field(default_factory=list)
    """entityIds of the assertions awarded with ``notify: true`` (the recipient was e-mailed)."""

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(self.seed)
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self._seq = 0
        self._order: dict[str, int] = {}
        self._by_recipient: dict[tuple[str, str], list[str]] = {}

    # -- seeding -----------------------------------------------------------------------------------

    @classmethod
    def seeded(
        cls,
        *,
        seed: int = 0,
        badge_classes: int = 2,
        assertions: int = 20,
        revoked_every: int = 7,
        expired_every: int = 11,
        **kwargs: Any,
    ) -> CanvasState:
        """One issuer with ``badge_classes`` badge classes and ``assertions`` assertions spread over them;
        every ``revoked_every``-th is revoked and every ``expired_every``-th has expired (0 = none).
        """
        state = cls(seed=seed, **kwargs)
        issuer = state.create_issuer(
            {"name": "Emulated Faculty", "email": "faculty@example.edu", "url": "https://example.edu"}
        )
        classes = [
            state.create_badge_class(
                issuer["entityId"],
                {
                    "name": f"Badge {n}",
                    "image": "https://example.edu/b.png",
                    "description": f"Badge class {n}",
                },
            )
            for n in range(badge_classes)
        ]
        now = datetime.fromtimestamp(state.clock(), UTC)
        for n in range(assertions):
            bc = classes[n % len(classes)] if classes else None
            if bc is None:
                break
            body: dict[str, Any] = {
                "recipient": {"identity": f"learner{n:06d}@example.edu", "type": "email", "hashed": True},
                "issuedOn": iso(now - timedelta(days=400 - n % 365)),
            }
            if expired_every and n % expired_every == expired_every - 1:
                body["expires"] = iso(now - timedelta(days=1))
            item = state.create_assertion("badgeclasses", bc["entityId"], body)
            if revoked_every and n % revoked_every == revoked_every - 1:
                state.revoke(item["entityId"], "seeded revocation")
        return state

    # -- auth --------------------------------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> dict[str, Any]:
        """The ``/o/token`` endpoint (password and refresh_token grants, refresh tokens rotate)."""
        with self.lock:
            kind = form.get("grant_type")
            self.stats[f"token_{kind}"] += 1
            if kind == "password":
                user = form.get("username", "")
                if not user or self.users.get(user) != form.get("password"):
                    raise CanvasApiError(400, "invalid_grant")
            elif kind == "refresh_token":
                old = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
                if old is None:
                    raise CanvasApiError(400, "invalid_grant")
                self.tokens.pop(old.access, None)
                user = old.username
            else:
                raise CanvasApiError(400, "unsupported_grant_type")
            token = Token(
                secrets.token_urlsafe(24), secrets.token_urlsafe(24), user, self.clock() + self.token_lifetime
            )
            self.tokens[token.access] = token
            body: dict[str, Any] = {
                "access_token": token.access,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "scope": form.get("scope") or "rw:profile rw:issuer rw:backpack",
            }
            if self.issue_refresh_tokens:
                self.refresh_tokens[token.refresh] = token
                body["refresh_token"] = token.refresh
            return body

    def authenticate(self, header: str | None) -> str:
        """The user of a valid ``Bearer`` header; 401 for a missing, unknown or expired token."""
        with self.lock:
            scheme, _, value = (header or "").partition(" ")
            token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None:
                self.stats["unauthorized"] += 1
                raise CanvasApiError(401, "Authentication credentials were not provided or are invalid.")
            if self.clock() >= token.expires_at:
                self.stats["expired_token"] += 1
                raise CanvasApiError(401, "Access token expired.")
            return token.username

    def expire_tokens(self) -> None:
        """Make every access token expire now (refresh tokens stay valid)."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = 0.0

    # -- entities ----------------------------------------------------------------------------------

    def _now(self) -> str:
        return iso(datetime.fromtimestamp(self.clock(), UTC))

    def create_issuer(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an issuer (``name``, ``email``, ``url`` required)."""
        missing = {k: ["This field is required."] for k in ("name", "email", "url") if not body.get(k)}
        if missing:
            raise CanvasApiError(400, "Bad Request", field_errors=missing)
        with self.lock:
            eid = entity_id(self.rng)
            issuer = {
                **body,
                "entityType": "Issuer",
                "entityId": eid,
                "openBadgeId": f"https://api.badgr.io/public/issuers/{eid}",
                "createdAt": self._now(),
                "staff": [{"role": "owner", "user": "admin", "email": next(iter(self.users), "")}],
            }
            self.issuers[eid] = issuer
            return issuer

    def find_issuer(self, key: str, by: str = "entityId") -> dict[str, Any]:
        """An issuer by entityId or openBadgeId; 404 otherwise."""
        with self.lock:
            if by == "entityId" and key in self.issuers:
                return self.issuers[key]
            for issuer in self.issuers.values():
                if by != "entityId" and issuer["openBadgeId"] == key:
                    return issuer
        raise CanvasApiError(404, "Not Found")

    def create_badge_class(self, issuer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a badge class (``name``, ``image``, ``description`` required)."""
        issuer = self.find_issuer(issuer_id)
        missing = {
            k: ["This field is required."] for k in ("name", "image", "description") if not body.get(k)
        }
        if missing:
            raise CanvasApiError(400, "Bad Request", field_errors=missing)
        with self.lock:
            eid = entity_id(self.rng)
            bc = {
                **body,
                "entityType": "BadgeClass",
                "entityId": eid,
                "openBadgeId": f"https://api.badgr.io/public/badges/{eid}",
                "issuer": issuer["entityId"],
                "issuerOpenBadgeId": issuer["openBadgeId"],
                "createdAt": self._now(),
                "archived": False,
            }
            self.badge_classes[eid] = bc
            return bc

    def _badge_class_for(self, scope: str, scope_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if scope == "badgeclasses":
            if scope_id not in self.badge_classes:
                raise CanvasApiError(404, "Not Found")
            return self.badge_classes[scope_id]
        self.find_issuer(scope_id)
        wanted = body.get("badgeclass") or str(body.get("badgeclassOpenBadgeId") or "").rsplit("/", 1)[-1]
        bc = self.badge_classes.get(wanted)
        if bc is None or bc["issuer"] != scope_id:
            raise CanvasApiError(400, "Bad Request", field_errors={"badgeclass": ["Unknown badge class."]})
        return bc

    def create_assertion(self, scope: str, scope_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Award a badge; with ``allowDuplicateAwards: false`` a second unrevoked award fails (400)."""
        with self.lock:
            bc = self._badge_class_for(scope, scope_id, body)
            raw_recipient = body.get("recipient")
            recipient: dict[str, Any] = raw_recipient if isinstance(raw_recipient, dict) else {}
            identity = str(recipient.get("identity") or "").strip()
            if not identity:
                raise CanvasApiError(
                    400, "Bad Request", field_errors={"recipient": ["This field is required."]}
                )
            for key in ("issuedOn", "expires"):
                if body.get(key):
                    try:
                        parse_iso(body[key])
                    except ValueError:
                        raise CanvasApiError(
                            400, "Bad Request", field_errors={key: ["Invalid datetime."]}
                        ) from None
            notify = body.get("notify", False)
            if not isinstance(notify, bool):
                raise CanvasApiError(
                    400, "Bad Request", field_errors={"notify": ["Must be a valid boolean."]}
                )
            if body.get("allowDuplicateAwards") is False and self._find(bc["entityId"], identity):
                self.stats["duplicate_rejected"] += 1
                raise CanvasApiError(400, "Bad Request", validation_errors=[DUPLICATE_AWARD_MESSAGE])
            eid = entity_id(self.rng)
            salt = f"{self.rng.getrandbits(32):08x}"
            hashed = recipient.get("hashed", True) is not False
            item = {
                "entityType": "Assertion",
                "entityId": eid,
                "openBadgeId": f"https://api.badgr.io/public/assertions/{eid}",
                "createdAt": self._now(),
                "badgeclass": bc["entityId"],
                "badgeclassOpenBadgeId": bc["openBadgeId"],
                "issuer": bc["issuer"],
                "issuerOpenBadgeId": bc["issuerOpenBadgeId"],
                "recipient": {
                    "identity": "sha256$" + hashlib.sha256((identity.lower() + salt).encode()).hexdigest()
                    if hashed
                    else identity,
                    "hashed": hashed,
                    "type": recipient.get("type") or "email",
                    "salt": salt,
                    "plaintextIdentity": identity,
                },
                "issuedOn": body.get("issuedOn") or self._now(),
                "narrative": body.get("narrative"),
                "evidence": body.get("evidence") or [],
                "revoked": False,
                "revocationReason": None,
                "acceptance": "Unaccepted",
                "expires": body.get("expires"),
                "extensions": body.get("extensions") or {},
            }
            self._seq += 1
            self._order[eid] = self._seq
            self.assertions[eid] = item
            self._by_recipient.setdefault((bc["entityId"], identity.lower()), []).append(eid)
            self.stats["assertions_created"] += 1
            if notify:  # the award e-mail Badgr sends the recipient with notify: true
                self.stats["notifications_sent"] += 1
                self.notified.append(eid)
            return item

    def revoke(self, eid: str, reason: str | None) -> dict[str, Any]:
        """Revoke an assertion (400 when it already is)."""
        with self.lock:
            item = self.assertions.get(eid)
            if item is None:
                raise CanvasApiError(404, "Not Found")
            if item["revoked"]:
                raise CanvasApiError(400, "Bad Request", validation_errors=["Assertion is already revoked."])
            item["revoked"] = True
            item["revocationReason"] = reason or "Revoked by issuer"
            return item

    def _expired(self, item: dict[str, Any]) -> bool:
        return bool(item.get("expires")) and parse_iso(item["expires"]).timestamp() <= self.clock()

    def _find(self, badgeclass: str, identity: str) -> list[dict[str, Any]]:
        key = identity.lower()
        return [
            a
            for a in self.assertions.values()
            if a["badgeclass"] == badgeclass
            and not a["revoked"]
            and a["recipient"]["plaintextIdentity"].lower() == key
        ]

    def list_assertions(
        self,
        scope: str,
        scope_id: str,
        *,
        recipient: str | None,
        include_expired: bool,
        include_revoked: bool,
        num: int | None,
        after: int | None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of a scope's assertions, newest first; returns the page and the next cursor."""
        with self.lock:
            if scope == "badgeclasses" and scope_id not in self.badge_classes:
                raise CanvasApiError(404, "Not Found")
            if scope == "issuers":
                self.find_issuer(scope_id)
            field_name = "badgeclass" if scope == "badgeclasses" else "issuer"
            wanted = recipient.lower() if recipient else None
            selected: list[tuple[int, dict[str, Any]]] = []
            for eid, item in self.assertions.items():
                seq = self._order[eid]
                if item[field_name] != scope_id or (after is not None and seq >= after):
                    continue
                if item["revoked"] and not include_revoked:
                    continue
                if not include_expired and self._expired(item):
                    continue
                if wanted and wanted not in (
                    item["recipient"]["plaintextIdentity"].lower(),
                    item["recipient"]["identity"].lower(),
                ):
                    continue
                selected.append((seq, item))
            selected.sort(key=lambda pair: -pair[0])
            if num is None or len(selected) <= num:
                return [dict(i) for _, i in selected], None
            page = selected[:num]
            return [dict(i) for _, i in page], page[-1][0]

    def sequence(self, entity_id: str) -> int:
        """The assertion's creation order (1, 2, ...): the record index ``odd_values_rate`` hashes."""
        with self.lock:
            return self._order[entity_id]

    # -- accessors for tests -------------------------------------------------------------------------

    def iter_assertions(self, **equal: Any) -> Iterator[dict[str, Any]]:
        """Assertions whose top-level fields equal ``equal`` (``recipient_email=`` matches the plaintext)."""
        email = str(equal.pop("recipient_email", "") or "").lower()
        with self.lock:
            items = list(self.assertions.values())
        for item in items:
            if email and item["recipient"]["plaintextIdentity"].lower() != email:
                continue
            if all(item.get(k) == v for k, v in equal.items()):
                yield item

    def count_assertions(self, **equal: Any) -> int:
        """How many assertions match (see :meth:`iter_assertions`)."""
        return sum(1 for _ in self.iter_assertions(**equal))

    @property
    def issuer_id(self) -> str:
        """The first issuer's entityId."""
        return next(iter(self.issuers))

    @property
    def badge_class_ids(self) -> list[str]:
        """Every badge class entityId, in creation order."""
        return list(self.badge_classes)
