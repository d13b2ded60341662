from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_credly.client.retry import RetryPolicy, parse_retry_after


def test_retry_after_seconds_and_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    # A date in the past means "now", never a negative wait.
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_stays_within_its_share():
    policy = RetryPolicy(backoff_base=2.0, jitter=0.5)
    rng = random.Random(3)
    waits = [policy.backoff(1, rng) for _ in range(200)]
    assert min(waits) >= 1.0
    assert max(waits) <= 2.0
    assert max(waits) - min(waits) > 0.5  # really randomised


def test_wait_for_honours_retry_after_attempts_and_total_time():
    policy = RetryPolicy(max_attempts=3, total_timeout=10.0, max_retry_after=60.0, jitter=0.0)
    assert policy.wait_for(1, retry_after=4.0, elapsed=0.0) == 4.0
    assert policy.wait_for(3, retry_after=None, elapsed=0.0) is None  # attempts spent
    assert policy.wait_for(1, retry_after=9.0, elapsed=2.0) is None  # would pass the total budget
    assert policy.wait_for(1, retry_after=61.0, elapsed=0.0) is None  # longer than we agree to wait


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"jitter": 2.0}, {"backoff_base": -1.0}])
def test_invalid_policies_are_rejected(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
