"""Fetch and write at the same time, in bounded memory.

:class:`PagePipeline` pulls pages in a background thread and groups them into write batches in a bounded
queue, so fetching the next batch (network wait, JSON parsing) overlaps the database write of the previous
one while memory holds a fixed number of batches. :class:`Progress` logs pages, rows and rows per second.
No Airflow import.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["CursorMerger", "PagePipeline", "Progress", "Tagged", "batches"]

_POLL_SECONDS = 0.1


P = TypeVar("P", bound=Sized)


class _End:
    pass


@dataclass
class _Failure:
    error: BaseException


class PagePipeline(Generic[P]):
    """Iterate write batches assembled by a background thread, at most ``maxsize`` batches ahead.

    The thread pulls pages and groups them into batches (:func:`batches`: ``batch_rows`` records or
    ``batch_seconds`` of pages), so a whole batch is fetched while the previous one is written; memory holds
    at most ``maxsize`` ready batches, the one being assembled and the one being written. The page iterator
    is created by the caller but only advanced in the thread. An error raised while fetching is re-raised in
    the consumer; leaving the ``with`` block early (a write failed) stops the thread after its current request.

    :param pages: the page iterator (pages or :class:`~airflow_provider_credly.warehouse.records.PageRecords`:
        anything whose ``len()`` is its number of records).
    :param maxsize: ready batches buffered ahead of the writer (>= 1).
    :param batch_rows: records per batch.
    :param batch_seconds: a batch is also complete after this many seconds of fetching.
    """

    def __init__(
        self, pages: Iterator[P], maxsize: int = 2, *, batch_rows: int = 1, batch_seconds: float = 10.0
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"page_queue_size must be at least 1, got {maxsize}")
        self._pages = pages
        self._batch_rows = max(1, batch_rows)
        self._batch_seconds = batch_seconds
        self._queue: queue.Queue[list[P] | _End | _Failure] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="credly-page-fetcher", daemon=True)

    def _put(self, item: list[P] | _End | _Failure) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for batch in batches(self._pages, max_rows=self._batch_rows, max_seconds=self._batch_seconds):
                if not self._put(batch) or self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failure(exc))
            return
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        self._put(_End())

    def __enter__(self) -> PagePipeline[P]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=60)

    def __iter__(self) -> Iterator[list[P]]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item


@dataclass(frozen=True, slots=True)
class Tagged(Generic[P]):
    """An item of :class:`CursorMerger` with the index of the source it came from."""

    source: int
    item: P

    def __len__(self) -> int:
        return len(self.item)


class CursorMerger(Generic[P]):
    """The items of several sources, fetched concurrently, as one iterator of :class:`Tagged` items.

    ``workers`` threads each take the next source not yet started (in index order) and pull its items; at
    most ``max_items`` items are fetched and not yet taken by the consumer, in total whatever the number of
    workers (a worker waits for room before each request). Each source's items keep their order; sources
    interleave. An error in a worker stops the others after their current request and is raised to the
    consumer; :meth:`close` (called by :class:`PagePipeline` when it stops) does the same without an error.

    :param sources: callables opening each source's iterator (called in a worker thread).
    :param workers: concurrent sources (>= 1).
    :param max_items: items in memory ahead of the consumer (>= 1).
    """

    def __init__(self, sources: Sequence[Callable[[], Iterator[P]]], *, workers: int, max_items: int) -> None:
        self._sources = list(sources)
        self._next_source = 0
        self._lock = threading.Lock()
        self._room = threading.BoundedSemaphore(max(1, max_items))
        self._queue: queue.Queue[Tagged[P] | _End | _Failure] = queue.Queue()
        self._stop = threading.Event()
        count = max(1, min(workers, len(self._sources))) if self._sources else 0
        self._threads = [
            threading.Thread(target=self._work, name=f"credly-cursor-{n}", daemon=True) for n in range(count)
        ]
        self._running = len(self._threads)
        self._started = False

    def _take_source(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next_source >= len(self._sources):
                return None
            self._next_source += 1
            return self._next_source - 1

    def _wait_for_room(self) -> bool:
        while not self._stop.is_set():
            if self._room.acquire(timeout=_POLL_SECONDS):
                return True
        return False

    def _work(self) -> None:
        try:
            while (index := self._take_source()) is not None:
                items = self._sources[index]()
                try:
                    while self._wait_for_room():
                        try:
                            item = next(items)
                        except StopIteration:
                            self._room.release()
                            break
                        self._queue.put(Tagged(index, item))
                finally:
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._stop.set()
            self._queue.put(_Failure(exc))
        finally:
            self._queue.put(_End())

    def __iter__(self) -> CursorMerger[P]:
        return self

    def __next__(self) -> Tagged[P]:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()
        while self._running:
            item = self._queue.get()
            if isinstance(item, _End):
                self._running -= 1
                continue
            if isinstance(item, _Failure):
                self.close()
                raise item.error
            self._room.release()  # the item now belongs to the consumer
            return item
        raise StopIteration

    def close(self) -> None:
        """Stop the workers after their current request and wait for them."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=60)


def batches(pages: Iterable[P], *, max_rows: int, max_seconds: float = 10.0) -> Iterator[list[P]]:
    """Group consecutive pages into batches of at least ``max_rows`` records (or ``max_seconds`` old).

    The last page of a batch carries the cursor to resume from after the batch is committed.
    """
    batch: list[P] = []
    rows = 0
    started = time.monotonic()
    for page in pages:
        if not batch:
            started = time.monotonic()
        batch.append(page)
        rows += len(page)
        if rows >= max_rows or time.monotonic() - started >= max_seconds:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


@dataclass
class Progress:
    """Counts pages and rows and logs them at most every ``every_seconds``."""

    log: logging.Logger | Any
    label: str = "transfer"
    every_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    pages: int = 0
    rows: int = 0
    started: float = field(default=0.0)
    _last: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self._last = self.clock()

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return max(self.clock() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / self.elapsed

    def add(self, pages: int, rows: int) -> None:
        """Count a written batch; log when due."""
        self.pages += pages
        self.rows += rows
        now = self.clock()
        if now - self._last >= self.every_seconds:
            self._last = now
            self.log.info(
                "%s: %d pages, %d rows written (%.0f rows/s)", self.label, self.pages, self.rows, self.rate
            )
