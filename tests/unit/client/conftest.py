"""What the HTTP core's unit tests share: a clock that only the injected sleep advances, and a client on it."""

from __future__ import annotations

import random

import pytest

from airflow_provider_credly.client import BasicTokenAuth, HttpClient, RetryPolicy

BASE = "https://api.credly.test/v1"
TOKEN = "s3cr3t-token-value"


class FakeClock:
    """Monotonic clock advanced only by the injected sleep: backoff is checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def http(clock):
    """An :class:`HttpClient` on :data:`BASE` with 4 attempts, 1 s backoff base, no jitter, on ``clock``."""
    return HttpClient(
        BASE,
        auth=BasicTokenAuth(TOKEN),
        retry=RetryPolicy(max_attempts=4, backoff_base=1.0, jitter=0.0),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(0),
    )
