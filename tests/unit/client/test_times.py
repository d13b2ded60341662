"""One time module: Credly's body form, filter dates, Canvas ISO 8601, response timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_credly.client.times import (
    format_credly_datetime,
    format_date,
    format_iso_timestamp,
    parse_credly_datetime,
    parse_timestamp,
)


def test_timestamps_in_the_documented_form():
    assert format_credly_datetime(datetime(2025, 8, 6, 9, 41, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2025-08-06 09:41:00 -0500"
    )
    assert format_credly_datetime(datetime(2025, 8, 6, 9, 41)) == "2025-08-06 09:41:00 +0000"  # naive = UTC
    assert (
        format_credly_datetime(pendulum.datetime(2025, 8, 6, 14, 41, tz="UTC")) == "2025-08-06 14:41:00 +0000"
    )
    assert format_credly_datetime(date(2025, 8, 6)) == "2025-08-06 00:00:00 +0000"
    assert format_credly_datetime("2025-08-06T14:41:00Z") == "2025-08-06 14:41:00 +0000"
    assert format_credly_datetime("2025-08-06 09:41:00 -0500") == "2025-08-06 09:41:00 -0500"
    with pytest.raises(ValueError, match="not a timestamp"):
        format_credly_datetime("yesterday")


def test_parse_credly_datetime_keeps_the_offset():
    parsed = parse_credly_datetime("2025-08-06 09:41:00 -0500")
    assert parsed.utcoffset() == timedelta(hours=-5)
    assert parsed == datetime(2025, 8, 6, 14, 41, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_credly_datetime(42)


def test_parse_timestamp():
    assert parse_timestamp(None) is None
    assert parse_timestamp("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_timestamp("soon")


def test_parse_timestamp_converts_offsets_to_utc():
    parsed = parse_timestamp("2025-08-06T15:00:00.000-05:00")
    assert parsed == datetime(2025, 8, 6, 20, 0, tzinfo=UTC)
    assert parsed is not None and parsed.tzinfo is UTC
    assert parse_timestamp("") is None


def test_format_date():
    east = timezone(timedelta(hours=5))
    assert format_date(date(2024, 2, 29)) == "2024-02-29"
    assert format_date(datetime(2024, 3, 1, 2, 0, tzinfo=east)) == "2024-02-29"  # aware: the UTC day
    assert format_date(datetime(2024, 3, 1, 2, 0)) == "2024-03-01"  # naive: as given
    assert format_date(" 2024-02-29 ") == "2024-02-29"
    with pytest.raises(ValueError, match="filter 'issued_at_min' needs a date"):
        format_date("2023-02-29", key="issued_at_min")  # no such day
    with pytest.raises(ValueError, match="needs a date"):
        format_date("29/02/2024")


def test_format_iso_timestamp():
    assert format_iso_timestamp(datetime(2025, 1, 2, 3, 4, 5), "issuedOn") == "2025-01-02T03:04:05+00:00"
    east = timezone(timedelta(hours=2))
    assert format_iso_timestamp(datetime(2025, 1, 2, 3, 4, tzinfo=east), "x") == "2025-01-02T03:04:00+02:00"
    assert format_iso_timestamp(date(2025, 1, 2), "x") == "2025-01-02T00:00:00+00:00"
    assert format_iso_timestamp(" 2025-01-02T03:04:05Z ", "x") == "2025-01-02T03:04:05Z"  # kept as given
    with pytest.raises(ValueError, match="expires 'tomorrow' is not an ISO 8601 timestamp"):
        format_iso_timestamp("tomorrow", "expires")
