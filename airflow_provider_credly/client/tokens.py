"""Authorization token lifecycle, once: masking the ``token`` values Credly lists, and the days a token has
left and what it may do. Pure Python: no Airflow import.

Credly's ``GET /organizations/<org>/authorization_tokens`` returns every token of the organization in clear
text. This package never hands such a value on: every record leaves the client with its ``token`` masked
(:func:`mask_token`), and the connection's own token is recognised by a constant-time comparison inside its
auth object (:meth:`BasicTokenAuth.matches`), never by returning it.

Credly documents no expiry field: tokens live a fixed time after ``created_at`` (180 days today), so the
lifetime is a setting (connection extra ``lifetime_days``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_credly.client.times import parse_timestamp

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_DAYS",
    "DEFAULT_TOKEN_WARN_DAYS",
    "PERMISSIONS",
    "TOKEN_MASK",
    "TokenStatus",
    "mask_token",
    "token_status",
]

DEFAULT_TOKEN_LIFETIME_DAYS = 180.0
DEFAULT_TOKEN_WARN_DAYS = 30.0
TOKEN_MASK = "***"
#: the permission flags of a token record, by their short name
PERMISSIONS = {"read": "read_enabled", "write": "write_enabled", "delete": "delete_enabled"}


def mask_token(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an authorization token record with its ``token`` value replaced by :data:`TOKEN_MASK`."""
    out = dict(record)
    if "token" in out:
        out["token"] = TOKEN_MASK
    return out


@dataclass(frozen=True)
class TokenStatus:
    """The connection's own token: its age, the days it has left and its permissions (never its value).

    :ivar token_id: the token record's ``id``.
    :ivar created_at: when the token was created.
    :ivar expires_at: ``created_at`` plus the lifetime.
    :ivar days_left: days until ``expires_at`` (negative once expired), to one decimal.
    """

    token_id: str
    description: str | None
    created_at: datetime
    expires_at: datetime
    days_left: float
    read_enabled: bool
    write_enabled: bool
    delete_enabled: bool

    @property
    def permissions(self) -> tuple[str, ...]:
        """The granted permissions among ``read``, ``write``, ``delete``."""
        return tuple(name for name, flag in PERMISSIONS.items() if getattr(self, flag))

    @property
    def read_only(self) -> bool:
        """Reads allowed, writes and deletes not."""
        return self.read_enabled and not self.write_enabled and not self.delete_enabled

    def describe(self) -> str:
        """``"expires in 42.0 day(s) (2027-01-01); permissions: read, write"`` (or read-only, expired)."""
        when = self.expires_at.date().isoformat()
        if self.days_left <= 0:
            life = f"expired {-self.days_left:.1f} day(s) ago ({when})"
        else:
            life = f"expires in {self.days_left:.1f} day(s) ({when})"
        perms = "read-only" if self.read_only else ", ".join(self.permissions) or "none"
        return f"{life}; permissions: {perms}"

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-safe view (for XCom): no token value in it."""
        return {
            "token_id": self.token_id,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "days_left": self.days_left,
            "read_enabled": self.read_enabled,
            "write_enabled": self.write_enabled,
            "delete_enabled": self.delete_enabled,
        }


def token_status(
    record: Mapping[str, Any],
    *,
    lifetime_days: float = DEFAULT_TOKEN_LIFETIME_DAYS,
    now: datetime | None = None,
) -> TokenStatus:
    """The :class:`TokenStatus` of one authorization token record.

    :param record: the record from ``GET .../authorization_tokens`` (masked or not).
    :param lifetime_days: how long a token lives after ``created_at``.
    :param now: the current time (default: now, UTC).
    :raises ValueError: a record without a readable ``created_at``, or a lifetime that is not positive.
    """
    if lifetime_days <= 0:
        raise ValueError(f"lifetime_days must be positive, got {lifetime_days!r}")
    try:
        created = parse_timestamp(record.get("created_at"))
    except ValueError:
        created = None
    if created is None:
        raise ValueError(f"authorization token {record.get('id')!r} has no readable created_at")
    expires = created + timedelta(days=lifetime_days)
    left = (expires - (now or datetime.now(UTC))).total_seconds() / 86_400
    return TokenStatus(
        token_id=str(record.get("id") or ""),
        description=record.get("description"),
        created_at=created,
        expires_at=expires,
        days_left=round(left, 1),
        read_enabled=record.get("read_enabled") is True,
        write_enabled=record.get("write_enabled") is True,
        delete_enabled=record.get("delete_enabled") is True,
    )
