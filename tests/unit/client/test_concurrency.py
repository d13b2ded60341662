"""observe_throttling over real loopback HTTP against the emulator's rate limit."""

from __future__ import annotations

import pytest

from airflow_provider_credly.client import BasicTokenAuth, HttpClient, RateLimitError, RetryPolicy
from airflow_provider_credly.client.concurrency import observe_throttling
from tests.unit.client.conftest import FakeClock


def test_every_429_is_reported_retried_ones_included(credly_emulator):
    # one request per 100 s and a bucket of one: the first GET passes, every later one is refused
    credly_emulator.set_faults(rate_limit=0.01, rate_limit_burst=1)
    clock = FakeClock()
    http = HttpClient(
        credly_emulator.base_url,
        auth=BasicTokenAuth(credly_emulator.token),
        retry=RetryPolicy(max_attempts=3, jitter=0.0),
        sleep=clock.sleep,
        clock=clock,
    )
    throttled: list[None] = []
    path = f"organizations/{credly_emulator.org_id}"
    with observe_throttling(http, lambda: throttled.append(None)):
        assert http.request("GET", path).status == 200
        assert throttled == []
        with pytest.raises(RateLimitError):
            http.request("GET", path)
    assert len(throttled) == 3  # the two retried 429s and the last one
    with pytest.raises(RateLimitError):
        http.request("GET", path)
    assert len(throttled) == 3  # no longer observed
