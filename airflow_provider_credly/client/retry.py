"""One retry policy for every request: exponential backoff with jitter, a cap, and ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, given as delta-seconds or as an HTTP date.

    Returns ``None`` for a missing or unparseable header, and never a negative number.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    :param max_attempts: attempts in all, the first one included (1 disables retries).
    :param backoff_base: seconds before the first retry; doubles with each attempt.
    :param backoff_max: cap on any single wait (a longer ``Retry-After`` is still honoured up to
        ``max_retry_after``).
    :param max_retry_after: longest ``Retry-After`` the client agrees to wait; a longer one ends the retries.
    :param total_timeout: retries stop once this many seconds have passed since the first attempt.
    :param jitter: fraction of each backoff wait that is randomised (0 = none, 1 = "full jitter").
    :param statuses: HTTP statuses worth retrying.
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 300.0
    total_timeout: float = 600.0
    jitter: float = 0.5
    statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.total_timeout < 0:
            raise ValueError("backoff and timeout values must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Wait before retry number ``attempt`` (1 = first retry) when the server gave no ``Retry-After``."""
        base = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        spread = base * self.jitter
        return float(base - spread + (rng or random).random() * spread)

    def wait_for(
        self,
        attempt: int,
        *,
        retry_after: float | None,
        elapsed: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to sleep before the next attempt, or ``None`` when the request must not be retried.

        :param attempt: the attempt that just failed (1-based).
        :param retry_after: the server's ``Retry-After`` in seconds, if any.
        :param elapsed: seconds since the first attempt started.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            # A little jitter on top so that many workers told the same instant do not return together.
            delay = retry_after + (rng or random).random() * min(1.0, self.backoff_base) * self.jitter
        else:
            delay = self.backoff(attempt, rng)
        if elapsed + delay > self.total_timeout:
            return None
        return delay
