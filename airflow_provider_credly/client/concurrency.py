"""Bounded concurrency for bulk API work: a worker pool, an adaptive (AIMD) concurrency limit that halves
when the server answers 429, and an optional client-side request rate. Pure Python: no Airflow import.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from airflow_provider_credly.client.http import HttpClient

__all__ = ["AdaptiveLimiter", "RequestRate", "observe_throttling", "paced", "run_pool"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class AdaptiveLimiter:
    """How many requests may be in flight at once: starts at ``max_limit``, halves when a 429 is seen
    (at most once per ``cooldown`` seconds), and grows by one after ``increase_after`` successes.

    :param max_limit: the ceiling (the worker count).
    :param min_limit: the floor.
    :param increase_after: successes needed to raise the limit by one.
    :param cooldown: seconds between two decreases (one burst of 429s counts once).
    """

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        increase_after: int = 50,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_limit < 1 or min_limit < 1 or min_limit > max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.limit = max_limit
        self.increase_after = increase_after
        self.cooldown = cooldown
        self.throttled = 0
        self._clock = clock
        self._in_flight = 0
        self._successes = 0
        self._last_decrease = float("-inf")
        self._cond = threading.Condition()

    def acquire(self) -> None:
        """Block until a slot is free."""
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1

    def release(self) -> None:
        """Free a slot after a request finished (whatever its outcome)."""
        with self._cond:
            self._in_flight -= 1
            self._successes += 1
            if self._successes >= self.increase_after and self.limit < self.max_limit:
                self.limit += 1
                self._successes = 0
            self._cond.notify_all()

    def on_throttled(self) -> None:
        """The server answered 429: halve the limit (once per cooldown)."""
        with self._cond:
            self.throttled += 1
            now = self._clock()
            if now - self._last_decrease < self.cooldown:
                return
            self._last_decrease = now
            self._successes = 0
            new = max(self.min_limit, self.limit // 2)
            if new != self.limit:
                log.info("429 received: lowering concurrency from %d to %d", self.limit, new)
            self.limit = new

    @contextmanager
    def slot(self) -> Iterator[None]:
        """``with limiter.slot(): ...`` around one unit of work."""
        self.acquire()
        try:
            yield
        finally:
            self.release()


class RequestRate:
    """Client-side pacing: at most ``per_second`` calls to :meth:`wait` pass per second (evenly spaced).

    :param per_second: the rate; ``None`` or 0 means unlimited.
    """

    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second is not None and per_second < 0:
            raise ValueError("per_second must not be negative")
        self.interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until this caller's turn."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self._sleep(at - now)


@contextmanager
def observe_throttling(http: HttpClient, callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` for every 429 response the client receives (including those it retries itself).

    :param http: the client whose responses are watched.
    :param callback: called once per 429, on the requesting thread.
    """

    def on_response(status: int) -> None:
        if status == 429:
            callback()

    with http.observe(on_response):
        yield


def paced(items: Iterator[T], limiter: AdaptiveLimiter, rate: RequestRate | None = None) -> Iterator[T]:
    """``items`` with each step (one page request of a page iterator) taken inside a ``limiter`` slot,
    after ``rate``'s turn: concurrent cursors share the limit that 429s lower, and the request rate.

    :param items: an iterator that makes one request per item (e.g. ``iter_pages``).
    """
    try:
        while True:
            if rate is not None:
                rate.wait()
            with limiter.slot():
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def run_pool(count: int, work: Callable[[int], None], *, workers: int, stop: threading.Event) -> int:
    """Call ``work(i)`` for ``i`` in ``range(count)`` on ``workers`` threads, in order of ``i``.

    Workers stop taking new items once ``stop`` is set; items in progress finish. ``work`` must handle its
    own errors: an exception escaping it sets ``stop`` and is re-raised here after every worker ended.

    :return: how many items were started.
    """
    counter = itertools.count()
    lock = threading.Lock()
    started = 0
    errors: list[BaseException] = []

    def loop() -> None:
        nonlocal started
        while not stop.is_set():
            with lock:
                i = next(counter)
                if i >= count:
                    return
                started += 1
            try:
                work(i)
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                return

    threads = [
        threading.Thread(target=loop, name=f"credly-worker-{n}", daemon=True)
        for n in range(max(1, min(workers, count)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return started
