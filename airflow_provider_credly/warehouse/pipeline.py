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

__all__ = ["CursorMerger", "Groups", "PagePipeline", "Progress", "Tagged", "batches"]

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
    :param groups: batches also end at the end of each such group of records (:func:`batches`).
    """

    def __init__(
        self,
        pages: Iterator[P],
        maxsize: int = 2,
        *,
        batch_rows: int = 1,
        batch_seconds: float = 10.0,
        groups: Groups[P] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"page_queue_size must be at least 1, got {maxsize}")
        self._pages = pages
        self._batch_rows = max(1, batch_rows)
        self._batch_seconds = batch_seconds
        self._groups = groups
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
            for batch in batches(
                self._pages, max_rows=self._batch_rows, max_seconds=self._batch_seconds, groups=self._groups
            ):
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
    most ``max_items`` items (and, when ``max_records`` is set, about that many records: each request counts
    as the largest item seen so far until it is answered, and the first one goes alone) are being fetched or
    fetched and not yet taken by the consumer, in total whatever the number of workers (a worker waits for room before each request), so
    large pages mean fewer requests in flight. Each source's items keep their order; sources
    interleave. An error in a worker stops the others after their current request and is raised to the
    consumer; :meth:`close` (called by :class:`PagePipeline` when it stops) does the same without an error.

    With ``more=True`` the sources may still be coming: :meth:`add` appends one (workers waiting for a source
    take it at once), :meth:`no_more_sources` says the list is complete, :meth:`fail` ends the iteration with
    an error (the producer of the sources broke). The iteration ends when every source is read and the list
    is complete.

    :param sources: callables opening each source's iterator (called in a worker thread).
    :param workers: concurrent sources (>= 1).
    :param max_items: items in flight or in memory ahead of the consumer (>= 1).
    :param max_records: records (``len()`` of the items) in flight or ahead of the consumer (``None``: no
        bound); one item is always allowed.
    :param more: more sources will be added.
    """

    def __init__(
        self,
        sources: Sequence[Callable[[], Iterator[P]]],
        *,
        workers: int,
        max_items: int,
        max_records: int | None = None,
        more: bool = False,
    ) -> None:
        self._sources = list(sources)
        self._next_source = 0
        self._more = more
        self._cond = threading.Condition()
        self._max_items = max(1, max_items)
        self._max_records = max_records
        self._room = threading.Condition()
        self._held_items = self._held_records = self._largest = 0
        self._queue: queue.Queue[Tagged[P] | _End | _Failure] = queue.Queue()
        self._stop = threading.Event()
        count = max(1, workers if more else min(workers, len(self._sources))) if more or self._sources else 0
        self._threads = [
            threading.Thread(target=self._work, name=f"credly-cursor-{n}", daemon=True) for n in range(count)
        ]
        self._running = len(self._threads)
        self._started = False

    def add(self, source: Callable[[], Iterator[P]]) -> bool:
        """Append a source (``more=True``); ``False`` when the merger has stopped (nothing will read it)."""
        with self._cond:
            if self._stop.is_set():
                return False
            self._sources.append(source)
            self._cond.notify()
            return True

    def no_more_sources(self) -> None:
        """The sources are complete: workers end once they are read."""
        with self._cond:
            self._more = False
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """End the iteration with ``error`` (raised to the consumer); the workers stop."""
        self._stop.set()
        self._queue.put(_Failure(error))
        with self._cond:
            self._cond.notify_all()

    def _take_source(self) -> int | None:
        with self._cond:
            while self._more and not self._stop.is_set() and self._next_source >= len(self._sources):
                self._cond.wait(_POLL_SECONDS)
            if self._stop.is_set() or self._next_source >= len(self._sources):
                return None
            self._next_source += 1
            return self._next_source - 1

    def _wait_for_room(self) -> int | None:
        """Reserve room for one request; the records reserved (``None``: the merger stopped)."""
        with self._room:
            while not self._stop.is_set():
                guess = self._largest
                # until an item's size is known, one request at a time: the first pages may be large
                records_ok = (
                    self._max_records is None
                    or self._held_items == 0
                    or (guess > 0 and self._held_records + guess <= self._max_records)
                )
                if self._held_items < self._max_items and records_ok:
                    self._held_items += 1
                    self._held_records += guess
                    return guess
                self._room.wait(_POLL_SECONDS)
        return None

    def _settle(self, reserved: int, item: P | None) -> None:
        """Replace a request's reservation by its item's records (``None``: it brought none, free the room)."""
        with self._room:
            if item is None:
                self._held_items -= 1
                self._held_records -= reserved
                self._room.notify()
            else:
                size = len(item)
                self._held_records += size - reserved
                self._largest = max(self._largest, size)

    def _release(self, item: P) -> None:
        with self._room:
            self._held_items -= 1
            self._held_records -= len(item)
            self._room.notify()

    def _work(self) -> None:
        try:
            while (index := self._take_source()) is not None:
                items = self._sources[index]()
                try:
                    while (reserved := self._wait_for_room()) is not None:
                        try:
                            item = next(items)
                        except StopIteration:
                            self._settle(reserved, None)
                            break
                        except BaseException:
                            self._settle(reserved, None)
                            raise
                        self._settle(reserved, item)
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
            self._release(item.item)  # the item now belongs to the consumer
            return item
        raise StopIteration

    def close(self) -> None:
        """Stop the workers after their current request and wait for them."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=60)


def batches(
    pages: Iterable[P],
    *,
    max_rows: int,
    max_seconds: float = 10.0,
    groups: Groups[P] | None = None,
) -> Iterator[list[P]]:
    """Group consecutive pages into batches of at least ``max_rows`` records (or ``max_seconds`` old).

    The last page of a batch carries the cursor to resume from after the batch is committed. With ``groups``
    a batch also ends where a group of ``groups.rows`` records ends, the page crossing it split there.
    """
    batch: list[P] = []
    rows = 0
    filled = groups.filled if groups else 0
    started = time.monotonic()
    for page in pages:
        rest: P | None = page
        while rest is not None:
            if not batch:
                started = time.monotonic()
            piece, rest = rest, None
            if groups is not None and len(piece) > groups.rows - filled:
                piece, rest = groups.split(piece, groups.rows - filled)
            batch.append(piece)
            rows += len(piece)
            if groups is not None:
                filled = (filled + len(piece)) % groups.rows
            if (
                rows >= max_rows
                or (groups is not None and filled == 0 and rows > 0)
                or time.monotonic() - started >= max_seconds
            ):
                yield batch
                batch, rows = [], 0
    if batch:
        yield batch


@dataclass(frozen=True)
class Groups(Generic[P]):
    """Where :func:`batches` ends batches besides ``max_rows``: every ``rows`` records, counted from
    ``filled`` records into the first group, splitting the page that crosses a group's end with ``split``."""

    rows: int
    split: Callable[[P, int], tuple[P, P]]
    filled: int = 0

    def __post_init__(self) -> None:
        if self.rows < 1 or not 0 <= self.filled < self.rows:
            raise ValueError(f"groups of {self.rows} records cannot be {self.filled} records full")


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
