"""Small helpers shared by the emulator modules: time conversion, ids and text."""

from __future__ import annotations

import hashlib
import random
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NONE_TS = -(1 << 62)
"""Sentinel stored in timestamp columns for ``null``."""
NONE_DAY = -(1 << 30)
"""Sentinel stored in day columns for ``null``."""
MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_USER_NAMESPACE = uuid.UUID("6f1c3b52-7d4e-4c1a-9d85-2f9a1e5b7c30")
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CREDLY_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? ?[+-]\d{2}:?\d{2}$")


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch for an (assumed UTC when naive) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime for epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)


@cache
def day_str(days: int) -> str:
    """``YYYY-MM-DD`` for a day number (days since 1970-01-01)."""
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


def day_or_none(days: int) -> str | None:
    """Render a day column value, mapping the null sentinel to ``None``."""
    return None if days == NONE_DAY else day_str(days)


HMS = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
MILLIS = [f".{m:03d}Z" for m in range(1000)]


def iso_ms(ms: int) -> str | None:
    """Render epoch ms like Credly does (``2025-08-06T14:41:00.000Z``); sentinel -> ``None``."""
    if ms == NONE_TS:
        return None
    days, rem = divmod(ms, MS_PER_DAY)
    return day_str(days) + "T" + HMS[rem // 1000] + MILLIS[rem % 1000]


def day_of_ms(ms: int) -> int:
    """UTC day number of epoch ms (sentinel preserved)."""
    return NONE_DAY if ms == NONE_TS else ms // MS_PER_DAY


def parse_day(text: str) -> int:
    """Parse ``YYYY-MM-DD`` into a day number; raises ``ValueError``."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"invalid date {text!r}, expected YYYY-MM-DD")
    return date.fromisoformat(text.strip()).toordinal() - _EPOCH_ORDINAL


def parse_timestamp(value: object) -> tuple[int, int]:
    """Parse a Credly timestamp into ``(epoch_ms, local_day)``.

    Accepts ``YYYY-MM-DD HH:MM:SS ±HHMM`` (Credly's format), ISO 8601 (``Z`` allowed), a bare date
    and ``datetime`` objects. Naive values are taken as UTC. ``local_day`` is the date in the offset
    the caller used (Credly's "time zone-agnostic" ``*_date`` fields). Raises ``ValueError``.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if _CREDLY_TS.match(text):
            text = re.sub(r" ?([+-]\d{2}):?(\d{2})$", r"\1:\2", text).replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    else:
        raise ValueError(f"invalid timestamp {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return to_ms(parsed), parsed.date().toordinal() - _EPOCH_ORDINAL


def stable_uuid(*parts: object) -> str:
    """Deterministic v4-shaped UUID string derived from ``parts``."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def bulk_uuids(seed: int, count: int) -> list[str]:
    """``count`` deterministic v4-shaped UUID strings (fast path for large seeded datasets)."""
    raw = random.Random(f"badge-ids-{seed}").randbytes(16 * count).hex()
    var = _VARIANT
    return [
        f"{raw[o : o + 8]}-{raw[o + 8 : o + 12]}-4{raw[o + 13 : o + 16]}-{var[raw[o + 16]]}"
        f"{raw[o + 17 : o + 20]}-{raw[o + 20 : o + 32]}"
        for o in range(0, 32 * count, 32)
    ]


@lru_cache(maxsize=65_536)
def user_id_for(email: str) -> str:
    """Credly user id of an earner: uuid5 of the lower-cased email (same value as ``uuid.uuid5``)."""
    digest = bytearray(hashlib.sha1(_USER_NAMESPACE.bytes + email.strip().lower().encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def text_field(payload: Mapping[str, Any], name: str) -> str | None:
    """Stripped non-empty string value of ``payload[name]`` or ``None``."""
    value = payload.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def humanize(attribute: str) -> str:
    """Rails-style attribute label (``badge_template_id`` -> ``Badge template``)."""
    if attribute.endswith("_id"):
        attribute = attribute[:-3]
    text = attribute.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def slugify(text: str) -> str:
    """Lower-case dash-separated slug."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class FakeClock:
    """Injectable clock: ``state.clock = FakeClock(datetime(...))``; call ``advance`` to move it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        """Current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` plus any ``timedelta`` keyword arguments; returns the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (naive means UTC)."""
        with self._lock:
            self._now = when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def utc_now() -> datetime:
    """Real current UTC time (the default clock)."""
    return datetime.now(UTC)
