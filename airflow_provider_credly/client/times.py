"""Timestamps and dates, once: every parse and format the package does, in the forms each API documents.

* Credly request bodies: ``YYYY-MM-DD HH:MM:SS ±HHMM`` (:func:`format_credly_datetime`);
* Credly filters: ``YYYY-MM-DD`` (:func:`format_date`);
* Canvas Credentials request bodies: ISO 8601 (:func:`format_iso_timestamp`);
* responses of both (ISO 8601, ``Z`` for UTC) read into aware UTC datetimes (:func:`parse_timestamp`).

Naive values are taken as UTC everywhere. No Airflow import.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

__all__ = [
    "format_credly_datetime",
    "format_date",
    "format_iso_timestamp",
    "parse_credly_datetime",
    "parse_timestamp",
]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from Credly's ISO 8601 text (``2025-08-06T14:41:00.000Z``); ``None`` stays None.

    :param value: the text (or any value whose ``str`` is ISO 8601); ``None`` or ``""`` for none.
    :raises ValueError: text that is not an ISO 8601 timestamp.
    """
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_credly_datetime(value: Any) -> datetime:
    """An aware ``datetime`` (its offset kept) from any value :func:`format_credly_datetime` accepts.

    :param value: ``datetime``/pendulum, ``date``, or text in Credly's form or ISO 8601.
    :raises ValueError: anything else.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a timestamp (use 'YYYY-MM-DD HH:MM:SS +HHMM' or ISO 8601)"
                ) from None
        value = parsed
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=UTC)
    raise ValueError(f"{value!r} is not a timestamp")


def format_credly_datetime(value: Any) -> str:
    """Credly's documented timestamp form ``YYYY-MM-DD HH:MM:SS ±HHMM``.

    :param value: ``datetime``/pendulum (naive ones are taken as UTC), ``date`` (midnight UTC), or a string
        in that form or in ISO 8601.
    :raises ValueError: a value that is not a timestamp.
    """
    return str(parse_credly_datetime(value).strftime("%Y-%m-%d %H:%M:%S %z"))


def format_date(value: Any, *, key: str = "value") -> str:
    """``YYYY-MM-DD`` from a ``date``, a ``datetime`` (aware ones are converted to UTC first) or a string.

    :param value: the date.
    :param key: the filter key named in the error message.
    :raises ValueError: a value that is not a date.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value.strftime("%Y-%m-%d"))
    if isinstance(value, date):
        return str(value.strftime("%Y-%m-%d"))
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        text = value.strip()
        try:
            date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return text
    raise ValueError(f"filter {key!r} needs a date (YYYY-MM-DD, date or datetime), got {value!r}")


def format_iso_timestamp(value: Any, what: str) -> str:
    """ISO 8601 text from a ``datetime`` (naive = UTC), a ``date`` (midnight UTC) or ISO 8601 text (kept as
    given once checked).

    :param value: the timestamp.
    :param what: the field named in the error message.
    :raises ValueError: text that is not ISO 8601.
    """
    if isinstance(value, datetime):
        aware: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat()
    text = str(value).strip()
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO 8601 timestamp") from None
    return text
