"""The transfer loop: pages in, upserted batches and their checkpoint out, one transaction per batch.

Used by the API-to-SQL operators (Credly badges, employees, events; Canvas Credentials assertions); plain
Python so it is unit-testable with any page iterator and any writer. No Airflow import.

:class:`TransferRun` holds one load's state and names its steps: :meth:`~TransferRun.saved` (tables and the
saved checkpoint), :meth:`~TransferRun.start` (resume or begin), :meth:`~TransferRun.stream` (batches, each
committed with its checkpoint by :meth:`~TransferRun.commit`), :meth:`~TransferRun.finish` (prune, done) and
:meth:`~TransferRun.result`. :func:`run_transfer` runs them in that order.

A sliced load (:meth:`TransferRun.run_sliced`) reads several cursors at once: the request is split into
:class:`~airflow_provider_credly.warehouse.slices.Slice` s fetched concurrently
(:class:`~airflow_provider_credly.warehouse.pipeline.CursorMerger`) and written by the one writer. Each slice has
its own checkpoint (``<key>/slice-<i>``) committed with the rows of its pages, so a retry continues every slice
where it stopped and never fetches a finished slice again. A new load plans on a thread of its own and its
cursors start on each slice as soon as the planner has made it final; the plan is saved with the first commit.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.warehouse.checkpoint import (
    FETCHED,
    RUNNING,
    Checkpoint,
    CheckpointStore,
    slice_key,
)
from airflow_provider_credly.warehouse.pipeline import CursorMerger, Groups, PagePipeline, Progress, Tagged
from airflow_provider_credly.warehouse.records import PageRecords, records_of, split_records
from airflow_provider_credly.warehouse.slices import (
    Slice,
    SlicedPages,
    planning_fingerprint,
    saved_slices,
    sliced_fingerprint,
)
from airflow_provider_credly.warehouse.writers import LoadMeta, SqlWriter

__all__ = [
    "BatchHook",
    "IncompleteLoadError",
    "PageOpener",
    "SlicedPages",
    "TransferResult",
    "TransferRun",
    "run_transfer",
]

log = logging.getLogger(__name__)

BatchHook = Callable[[Checkpoint], None]
PageOpener = Callable[[str | None], Iterator[Page]]

#: records per write batch (and, unless commits end on the writer's groups, per commit) by default
DEFAULT_BATCH_ROWS = 10_000

#: batches a sliced load may write before its plan is complete (their commit waits for the plan) before the
#: writer waits for the planner: bounds the open transaction
_BATCHES_BEFORE_PLAN = 4


def _chunk_rows(writer: SqlWriter, batch_rows: int) -> int:
    """Records per ``write`` call: ``batch_rows``, or the writer's :attr:`~SqlWriter.append_chunk_rows` for an
    append-only load (still committed every ``batch_rows``)."""
    if writer.append_only and writer.append_chunk_rows:
        return min(batch_rows, writer.append_chunk_rows)
    return batch_rows


class _Stopped(Exception):
    """The sliced load stopped while its slices were still planned."""


class IncompleteLoadError(RuntimeError):
    """The page source stopped before the cursor said it was at its end."""


@dataclass(frozen=True)
class TransferResult:
    """Summary of a transfer (JSON-friendly: returned as the operators' XCom)."""

    table: str
    rows: int
    pages: int
    batches: int
    load_id: str
    resumed: bool
    resumed_at_page: int
    pruned: int
    duration_s: float
    rows_per_second: float
    max_updated_at: str | None
    slices: int = 0  #: slices of a sliced load (0: one cursor)
    slices_skipped: int = 0  #: slices finished by an earlier attempt, not fetched again

    def as_dict(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return asdict(self)


def _newest(batch: list[PageRecords]) -> str | None:
    return max((chunk.newest for chunk in batch if chunk.newest is not None), default=None)


def _whole_pages(batch: list[PageRecords]) -> int:
    """The pages a batch adds to a checkpoint's count (a split page counts with its last part)."""
    return sum(1 for chunk in batch if not chunk.partial)


def _split_tagged(tagged: Tagged[PageRecords], at: int) -> tuple[Tagged[PageRecords], Tagged[PageRecords]]:
    head, tail = split_records(tagged.item, at)
    return Tagged(tagged.source, head), Tagged(tagged.source, tail)


def _slice_fingerprint(load_id: str, piece: Slice) -> str:
    return f"{load_id}:{piece.since}..{piece.until}"


@dataclass
class _GroupClock:
    """The rows of an append-only load's table, to end commits on the writer's groups (see
    :meth:`SqlWriter.start_group_commits`)."""

    rows: int  #: per group
    counted: int  #: rows counted in the groups so far (the writer's first group may count as partly full)

    @property
    def filled(self) -> int:
        """Rows in the group being filled."""
        return self.counted % self.rows

    def add(self, rows: int) -> bool:
        """Count written rows; returns whether a group ended. (The first group too, though the writer may
        count it as partly full: committing it every 10,000 rows instead cost more, 300k badges 5.9-6.2 s of
        writer CPU against 4.2-4.5 s: the rows appended in place of a whole row group are checkpointed later
        and recompressed.)"""
        self.counted += rows
        return self.filled == 0


@dataclass
class _Pending:
    """What was written since the last commit."""

    pages: int = 0
    rows: int = 0
    fetched: int = 0
    since: float = field(default_factory=time.monotonic)


class TransferRun:
    """One load of pages into ``writer``'s table, step by step (see :func:`run_transfer` for the parameters).

    The caller owns the writer (and closes it). :meth:`saved` may be called before :meth:`start` to decide
    the request from the saved checkpoint (a bootstrap load); the tables are created once either way.
    """

    checkpoint: Checkpoint  #: the load's checkpoint, advanced by every batch (set by :meth:`start`)
    meta: LoadMeta
    progress: Progress

    def __init__(
        self,
        *,
        writer: SqlWriter,
        key: str,
        prune: bool = False,
        queue_size: int = 2,
        batch_rows: int | None = None,
        batch_seconds: float = 10.0,
        checkpoints: CheckpointStore | None = None,
        after_commit: BatchHook | None = None,
        logger: logging.Logger | Any = log,
        progress_every: float = 10.0,
        unique_keys: bool = False,
    ) -> None:
        self.writer = writer
        self.key = key
        self.prune = prune
        self.queue_size = queue_size
        if batch_rows is not None and batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows!r}")
        self.batch_rows = DEFAULT_BATCH_ROWS if batch_rows is None else batch_rows
        #: commits of an append-only load end on the writer's groups (``batch_rows`` not set)
        self.commit_on_groups = batch_rows is None
        self.batch_seconds = batch_seconds
        self.store = checkpoints or CheckpointStore(writer)
        self.after_commit = after_commit
        self.log = logger
        self.progress_every = progress_every
        self.unique_keys = unique_keys
        self.resumed = False
        self.resumed_at = 0
        self.batches = 0
        self.pruned = 0
        self._pending = _Pending()
        self._saved: Checkpoint | None = None
        self._tables_ready = False  # tables created and the saved checkpoint read (once per run)
        self.slices: list[Slice] = []  # a sliced load's plan (empty: one cursor, or still planning)
        self.slices_skipped = 0
        self._slice_checkpoints: dict[int, Checkpoint] = {}
        self._dirty_slices: set[int] = set()
        self._fetching: list[Slice] = []
        self._slice_lock = threading.Lock()  # the planning thread adds slices while batches advance them
        self._open_slices = 0  # slices taken whose cursor has not ended
        self._planned = threading.Event()  # set when the plan is complete (or planning failed)
        self._plan_error: BaseException | None = None
        self._request_fingerprint: str | None = None  # a sliced load's request (the plan is added to it)

    def saved(self) -> Checkpoint | None:
        """The checkpoint saved under the key (``None``: none); creates the tables if missing, once."""
        if not self._tables_ready:
            self.writer.ensure_tables([self.store.ddl()])
            self._saved = self.store.load(self.key)
            self._tables_ready = True
        return self._saved

    def start(self, fingerprint: str) -> Checkpoint:
        """Continue the saved load of the same request, or save a new checkpoint; choose how batches insert.

        A checkpoint left unfinished by a failed attempt with the same ``fingerprint`` is continued from its
        cursor URL (same load id, so ``prune`` stays exact).
        """
        saved = self.saved()
        writer = self.writer
        self.resumed = bool(saved and saved.fingerprint == fingerprint and saved.resumable)
        if saved and self.resumed:
            cp = saved
            self.log.info(
                "Resuming transfer %s after %d pages / %d rows (load %s)",
                self.key,
                cp.pages,
                cp.rows,
                cp.load_id,
            )
        else:
            cp = self.store.new(self.key, fingerprint, uuid.uuid4().hex)
            self.store.save(cp)
            writer.commit()
        self.checkpoint = cp
        self.resumed_at = cp.pages
        writer.prepare_load(
            append_only=bool(
                self.unique_keys
                and writer.deletes_before_insert
                and cp.status == "running"
                and writer.holds_only_load(cp.load_id)
            )
        )
        if writer.append_only:
            self.log.info(
                "%s holds no row of another load: inserting batches without deleting their keys", writer.table
            )
        self.meta = LoadMeta.new(cp.load_id)
        self.progress = Progress(self.log, label=f"{writer.table}", every_seconds=self.progress_every)
        return cp

    def stream(self, open_pages: PageOpener) -> None:
        """Write the pages after the checkpoint's cursor, committing every ``batch_rows`` records,
        ``batch_seconds`` or at the last page (by default, where the writer appends cheapest: see
        :meth:`_group_clock`).

        :raises IncompleteLoadError: the pages ended before the end of their cursor.
        """
        writer, batch_rows = self.writer, self.batch_rows
        # Append-only loads may insert smaller chunks (the writer's append_chunk_rows) and still commit every
        # ``batch_rows``: without the per-batch delete a chunk costs no more than its rows. The queue holds as
        # many records either way, so a slow commit does not stall the fetch thread sooner.
        chunk_rows = _chunk_rows(writer, batch_rows)
        clock = self._group_clock()
        groups = None if clock is None else Groups(clock.rows, split_records, clock.filled)
        # The fetch thread also reads each record's key and updated_at; the records stay JSON text.
        pipeline = PagePipeline(
            records_of(
                open_pages(self.checkpoint.next_url),
                writer.spec.key,
                reopened=self.checkpoint.next_url is not None,
            ),
            self.queue_size * max(1, batch_rows // chunk_rows),
            batch_rows=chunk_rows,
            batch_seconds=self.batch_seconds,
            groups=groups,
        )
        self._pending = _Pending()
        with pipeline:
            for batch in pipeline:
                fetched = sum(len(chunk) for chunk in batch)
                rows, pages = self._write(batch, fetched), _whole_pages(batch)
                self.checkpoint = self.checkpoint.advance(
                    next_url=batch[-1].next_url, pages=pages, rows=rows, max_updated_at=_newest(batch)
                )
                self._pending.pages += pages
                self._pending.rows += rows
                self._pending.fetched += fetched
                # Drop this chunk before waiting for the next one: memory holds the queued chunks only.
                del batch
                if self._commit_due(None if clock is None else clock.add(fetched)):
                    self.commit()
            # the pages ended without a last page: commit what was written
            if self._pending.pages or self._pending.fetched:
                self.commit()
        if self.checkpoint.status != FETCHED:
            # Only an explicit end of cursor finishes a load: a source that stops early leaves it resumable.
            raise IncompleteLoadError(
                f"the pages of {writer.table} ended before the end of their cursor; the load stays "
                f"resumable after page {self.checkpoint.pages}"
            )

    def _write(self, chunks: list[PageRecords], fetched: int) -> int:
        """Write the chunks; returns the records they add to the checkpoint's count (a split page counts
        with its last part, a duplicate key once).

        An append-only load writes a batch holding the first page of a reopened cursor by replacing its keys:
        the head of that page may be committed already (a commit fell inside it).
        """
        if not fetched:
            return 0
        if self.writer.append_only and any(chunk.refetched for chunk in chunks):
            written = self.writer.write(chunks, self.meta, replace_keys=True)
        else:
            written = self.writer.write(chunks, self.meta)
        # ``written`` counts each key once; the parts of a split page move their count to the last part
        return written + sum(chunk.counted_rows - len(chunk) for chunk in chunks)

    def _group_clock(self) -> _GroupClock | None:
        """Where an append-only load with the default ``batch_rows`` commits: at the end of each of the
        writer's groups (DuckDB's row groups, 122,880 rows), the page crossing one split there, or after
        ``batch_seconds``; ``None``: every ``batch_rows``."""
        if not self.commit_on_groups:
            return None
        groups = self.writer.start_group_commits()
        if groups is None:
            return None
        rows, filled = groups
        self.log.info(
            "Committing %s at the end of each row group of %d rows (the first after %d)",
            self.writer.table,
            rows,
            rows - filled,
        )
        return _GroupClock(rows, filled)

    def stream_slices(self, source: SlicedPages) -> None:
        """Write the pages of every unfinished slice, fetched ``source.workers`` at a time, committing like
        :meth:`stream`; each commit saves the checkpoints of the slices it advanced.

        The slices are :attr:`slices` when the plan is known (a resumed load); otherwise ``source.plan`` runs
        on a thread of its own and each slice is fetched as soon as it is final. No commit happens before the
        plan is complete: the first one saves it in the load's fingerprint.

        :raises IncompleteLoadError: a slice's pages ended before the end of its cursor.
        """
        writer, batch_rows = self.writer, self.batch_rows
        load_id = self.checkpoint.load_id
        key_name = writer.spec.key
        workers = max(1, source.workers)
        self._slice_checkpoints, self._dirty_slices, self._fetching = {}, set(), []
        self._open_slices = self.slices_skipped = 0
        # pages in flight or fetched ahead of the batching, in total: one request per cursor and two ready (the
        # batching queue buffers the rest). An explicit batch_rows also bounds their records (large pages: fewer
        # requests in flight); by default every cursor keeps its request out, or 16 cursors on 1,000-record
        # pages would have 10 in flight and go no faster than 8
        merger: CursorMerger[PageRecords] = CursorMerger(
            [],
            workers=workers,
            max_items=workers + 2,
            max_records=None if self.commit_on_groups else batch_rows,
            more=True,
        )

        def opener(piece: Slice, start_url: str | None) -> Iterator[PageRecords]:
            return records_of(source.open(piece, start_url), key_name, reopened=start_url is not None)

        taken: list[Slice] = []

        def take(piece: Slice, saved: Checkpoint | None = None) -> None:
            """Fetch a final slice from its checkpoint, unless an earlier attempt finished it."""
            key, fingerprint = slice_key(self.key, piece.index), _slice_fingerprint(load_id, piece)
            if saved is None or saved.fingerprint != fingerprint:
                saved = self.store.new(key, fingerprint, load_id)
            with self._slice_lock:
                if piece.index != len(taken):
                    raise ValueError("the slices of a plan must be numbered 0..n-1 in order")
                taken.append(piece)
                self._slice_checkpoints[piece.index] = saved
                if saved.status != RUNNING:
                    self.slices_skipped += 1
                    return
                self._open_slices += 1
                self._fetching.append(piece)  # the merger's sources, in this order
                if not merger.add(functools.partial(opener, piece, saved.next_url)):
                    raise _Stopped  # the load failed meanwhile: stop planning

        planner: threading.Thread | None = None
        if self._planned.is_set():  # the plan of the attempt resumed
            for piece in self.slices:
                take(piece, self.store.load(slice_key(self.key, piece.index)) if self.resumed else None)
            merger.no_more_sources()
            self.log.info(
                "Reading %d slices of %s with %d cursors%s",
                len(self._fetching),
                writer.table,
                min(workers, len(self._fetching)),
                f" ({self.slices_skipped} finished before)" if self.slices_skipped else "",
            )
        else:

            def plan() -> None:
                try:
                    made = list(source.plan(take))
                    if not made or made[: len(taken)] != taken:
                        raise ValueError("the plan returned other slices than it handed over while planning")
                    for piece in made[len(taken) :]:  # not handed over while planning
                        take(piece)
                    self.slices = made
                    self._planned.set()  # before the merger may end: its last batch then finishes the load
                    merger.no_more_sources()
                except _Stopped:
                    pass
                except BaseException as exc:  # raised to the writer by the merger
                    self._plan_error = exc
                    merger.fail(exc)
                finally:
                    self._planned.set()

            planner = threading.Thread(target=plan, name="credly-slice-planner", daemon=True)
            self.log.info(
                "Planning the slices of %s; %d cursors start on them as they are final", writer.table, workers
            )
        chunk_rows = _chunk_rows(writer, batch_rows)
        clock = self._group_clock()
        pipeline = PagePipeline(
            merger,
            self.queue_size * max(1, batch_rows // chunk_rows),
            batch_rows=chunk_rows,
            batch_seconds=self.batch_seconds,
            groups=None if clock is None else Groups(clock.rows, _split_tagged, clock.filled),
        )
        self._pending = _Pending()
        try:
            with pipeline:
                if planner is not None:
                    planner.start()
                for batch in pipeline:
                    chunks = [tagged.item for tagged in batch]
                    fetched = sum(len(chunk) for chunk in chunks)
                    rows, pages = self._write(chunks, fetched), _whole_pages(chunks)
                    done = self._advance_slices(batch)
                    self.checkpoint = self.checkpoint.advance(
                        next_url=None, pages=pages, rows=rows, max_updated_at=_newest(chunks), fetched=done
                    )
                    self._pending.pages += pages
                    self._pending.rows += rows
                    self._pending.fetched += fetched
                    del batch, chunks
                    due = self._commit_due(None if clock is None else clock.add(fetched))
                    if due and self._plan_ready(self._pending.fetched):
                        self.commit()
                # the merger ended: the plan is complete and every slice taken was read
                self._plan_ready(None)
                with self._slice_lock:
                    ended = self._open_slices == 0
                # the last batch came before the plan's end: the load is fetched all the same
                late = ended and self.checkpoint.status != FETCHED
                if late:
                    self.checkpoint = self.checkpoint.advance(
                        next_url=None, pages=0, rows=0, max_updated_at=None, fetched=True
                    )
                if self._pending.pages or self._pending.fetched or late:
                    self.commit()
        finally:
            if planner is not None and planner.is_alive():
                planner.join(timeout=60)
        if self.checkpoint.status != FETCHED:
            unfinished = [i for i, cp in self._slice_checkpoints.items() if cp.status == RUNNING]
            raise IncompleteLoadError(
                f"the pages of {writer.table} ended before the end of the cursors of slices {unfinished}; "
                f"the load stays resumable"
            )

    def _plan_ready(self, pending_rows: int | None) -> bool:
        """Whether the plan is complete, so a commit may save it; waits for the planner once the batches
        written meanwhile exceed their budget (``pending_rows`` ``None``: always).

        :raises BaseException: the planner's error.
        """
        if not self._planned.is_set():
            if pending_rows is not None and pending_rows < _BATCHES_BEFORE_PLAN * self.batch_rows:
                return False
            self._planned.wait()
        if self._plan_error is not None:
            raise self._plan_error
        return True

    def _advance_slices(self, batch: list[Tagged[PageRecords]]) -> bool:
        """Move each slice's checkpoint past its pages in ``batch`` (a slice's pages come in order).

        :return: whether every slice is fetched (the plan complete and no cursor left).
        """
        with self._slice_lock:
            for tagged in batch:
                index, chunk = self._fetching[tagged.source].index, tagged.item
                cp = self._slice_checkpoints[index].advance(
                    next_url=chunk.next_url,
                    pages=0 if chunk.partial else 1,
                    rows=chunk.counted_rows,
                    max_updated_at=chunk.newest,
                )
                self._slice_checkpoints[index] = cp
                self._dirty_slices.add(index)
                if cp.status != RUNNING:
                    self._open_slices -= 1
            return self._open_slices == 0 and self._planned.is_set() and self._plan_error is None

    def _commit_due(self, group_ended: bool | None = None) -> bool:
        """Whether to commit now: ``batch_rows`` records pending (or, when ``group_ended`` is not ``None``,
        whether a group of the writer ended), the last page written, or ``batch_seconds`` since the last
        commit."""
        return (
            (self._pending.fetched >= self.batch_rows if group_ended is None else group_ended)
            or self.checkpoint.status == FETCHED
            or time.monotonic() - self._pending.since >= self.batch_seconds
        )

    def commit(self) -> None:
        """Save the checkpoint (and those of the slices advanced) and commit them with the batches written
        since the last commit."""
        if self._request_fingerprint is not None and self._planned.is_set():  # the plan goes with the rows
            planned = sliced_fingerprint(self._request_fingerprint, self.slices)
            if self.checkpoint.fingerprint != planned:
                self.checkpoint = replace(self.checkpoint, fingerprint=planned)
        with self._slice_lock:
            dirty = [self._slice_checkpoints[index] for index in sorted(self._dirty_slices)]
            self._dirty_slices.clear()
        for cp in dirty:
            self.store.save(cp)
        self.store.save(self.checkpoint)
        self.writer.commit()
        self.batches += 1
        self.progress.add(self._pending.pages, self._pending.rows)
        self._pending = _Pending()
        if self.after_commit is not None:
            self.after_commit(self.checkpoint)

    def finish(self) -> None:
        """After the last page: prune the rows this load did not write (when asked), mark the load done."""
        if self.prune:
            self.pruned = self.writer.prune(self.checkpoint.load_id)
            self.log.info(
                "Pruned %d rows not seen by load %s from %s",
                self.pruned,
                self.checkpoint.load_id,
                self.writer.table,
            )
        self.checkpoint = self.checkpoint.finished()
        self.store.save(self.checkpoint)
        if self.slices:  # a finished load resumes nothing: its slices' checkpoints go with it
            self.store.delete_slices(self.key)
        self.writer.commit()

    def result(self) -> TransferResult:
        """The summary of this attempt (logged)."""
        cp = self.checkpoint
        result = TransferResult(
            table=str(self.writer.table),
            rows=cp.rows,
            pages=cp.pages,
            batches=self.batches,
            load_id=cp.load_id,
            resumed=self.resumed,
            resumed_at_page=self.resumed_at if self.resumed else 0,
            pruned=self.pruned,
            duration_s=round(self.progress.elapsed, 3),
            rows_per_second=round(self.progress.rate, 1),
            max_updated_at=cp.max_updated_at,
            slices=len(self.slices),
            slices_skipped=self.slices_skipped,
        )
        self.log.info(
            "Loaded %d rows in %d pages into %s in %.1f s (%.0f rows/s this attempt)%s",
            result.rows,
            result.pages,
            result.table,
            result.duration_s,
            result.rows_per_second,
            f", resumed at page {self.resumed_at}" if self.resumed else "",
        )
        return result

    def run_sliced(self, source: SlicedPages, fingerprint: str) -> TransferResult:
        """Every step of a sliced load: start, plan while streaming the slices (or take the plan of the
        unfinished load of the same request), finish; rolled back on error.

        The plan is part of the load's fingerprint (saved with the first batch), so a retry continues the same
        slices even if the counts changed since; a new load plans again.
        """
        saved = self.saved()
        plan = saved_slices(saved.fingerprint if saved and saved.resumable else None, fingerprint)
        self._request_fingerprint = fingerprint
        if plan is not None:
            self.slices = plan
            self._planned.set()
            self.start(sliced_fingerprint(fingerprint, plan))
        else:  # planned while the first slices are fetched; a checkpoint without its plan is never resumed
            self.slices = []
            self._planned.clear()
            self.start(planning_fingerprint(fingerprint))
        try:
            if not self.resumed:  # slice checkpoints of an abandoned load would never match: drop them
                self.store.delete_slices(self.key)
                self.writer.commit()
            if self.checkpoint.status == RUNNING:
                self.stream_slices(source)
            self.finish()
        except BaseException:
            self.writer.rollback()
            raise
        return self.result()

    def run(self, open_pages: PageOpener, fingerprint: str) -> TransferResult:
        """Every step: start, stream (unless every page was written already), finish; rolled back on error."""
        self.start(fingerprint)
        try:
            if self.checkpoint.status == "running":
                self.stream(open_pages)
            self.finish()
        except BaseException:
            self.writer.rollback()
            raise
        return self.result()


def run_transfer(
    *,
    open_pages: PageOpener,
    writer: SqlWriter,
    key: str,
    fingerprint: str,
    prune: bool = False,
    queue_size: int = 2,
    batch_rows: int | None = None,
    batch_seconds: float = 10.0,
    checkpoints: CheckpointStore | None = None,
    after_commit: BatchHook | None = None,
    logger: logging.Logger | Any = log,
    progress_every: float = 10.0,
    unique_keys: bool = False,
) -> TransferResult:
    """Stream pages into ``writer`` with resume support.

    Each batch (``batch_rows`` records or ``batch_seconds`` of pages) is upserted and the checkpoint
    advanced in one transaction. A checkpoint left ``running`` by a failed attempt with the same ``key``
    and ``fingerprint`` is continued from its cursor URL (same load id, so ``prune`` stays exact).

    :param open_pages: returns the page iterator starting at a saved cursor URL (``None``: the beginning).
    :param writer: the destination writer (owns the connection; the caller closes it).
    :param key: the transfer's checkpoint key.
    :param fingerprint: describes the request; a checkpoint with another fingerprint is not resumed.
    :param prune: after the last page, delete rows this load did not write (full loads only).
    :param queue_size: complete batches fetched ahead of the writer (memory: about ``queue_size + 2`` batches).
    :param batch_rows: records per write batch, i.e. per transaction and checkpoint (``None``: 10,000; and an
        append-only load into DuckDB then commits at the end of each row group instead, 122,880 rows,
        splitting the page that crosses it: see :meth:`SqlWriter.start_group_commits`). Set, it also bounds the
        records a sliced load's cursors hold in flight or ahead (otherwise N + 2 pages).
    :param batch_seconds: commit at least this often (seconds of pages).
    :param checkpoints: the checkpoint store (default: in the writer's database).
    :param after_commit: called with the checkpoint after every committed batch (progress hooks, tests).
    :param logger: where progress and the summary are logged.
    :param progress_every: seconds between progress lines.
    :param unique_keys: the pages yield each key at most once (a cursor seeking by a unique order, as
        Credly's high-volume badge cursor by ``(created_at, id)``). Then, when the table holds no row of another
        load (a fresh load into an empty table, or the resumption of such a load: the batch after the
        checkpoint was rolled back), batches are plain inserts without the per-batch delete of their keys.
    """
    run = TransferRun(
        writer=writer,
        key=key,
        prune=prune,
        queue_size=queue_size,
        batch_rows=batch_rows,
        batch_seconds=batch_seconds,
        checkpoints=checkpoints,
        after_commit=after_commit,
        logger=logger,
        progress_every=progress_every,
        unique_keys=unique_keys,
    )
    return run.run(open_pages, fingerprint)
