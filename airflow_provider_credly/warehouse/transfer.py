"""The transfer loop: pages in, upserted batches and their checkpoint out, one transaction per batch.

Used by the Credly-to-SQL operators (badges, employees, events); plain Python so it is unit-testable with
any page iterator and any writer. No Airflow import.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.warehouse.checkpoint import FETCHED, Checkpoint, CheckpointStore
from airflow_provider_credly.warehouse.pipeline import PagePipeline, Progress
from airflow_provider_credly.warehouse.records import PageRecords, records_of
from airflow_provider_credly.warehouse.writers import LoadMeta, SqlWriter

__all__ = ["BatchHook", "IncompleteLoadError", "TransferResult", "run_transfer"]

log = logging.getLogger(__name__)

BatchHook = Callable[[Checkpoint], None]

_APPEND_CHUNK_ROWS = 2_500  # records fetched and inserted at a time by an append-only load


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

    def as_dict(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return asdict(self)


def _newest(batch: list[PageRecords]) -> str | None:
    return max((chunk.newest for chunk in batch if chunk.newest is not None), default=None)


def run_transfer(
    *,
    open_pages: Callable[[str | None], Iterator[Page]],
    writer: SqlWriter,
    key: str,
    fingerprint: str,
    prune: bool = False,
    queue_size: int = 2,
    batch_rows: int = 10_000,
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
    :param after_commit: called with the checkpoint after every committed batch (progress hooks, tests).
    :param unique_keys: the pages yield each key at most once (a cursor seeking by a unique order, as
        Credly's high-volume badge cursor by ``(created_at, id)``). Then, when the table holds no row of another
        load (a fresh load into an empty table, or the resumption of such a load: the batch after the
        checkpoint was rolled back), batches are plain inserts without the per-batch delete of their keys.
    """
    store = checkpoints or CheckpointStore(writer)
    writer.ensure_tables([store.ddl()])
    saved = store.load(key)
    resumed = bool(saved and saved.fingerprint == fingerprint and saved.resumable)
    if saved and resumed:
        cp = saved
        logger.info(
            "Resuming transfer %s after %d pages / %d rows (load %s)", key, cp.pages, cp.rows, cp.load_id
        )
    else:
        cp = store.new(key, fingerprint, uuid.uuid4().hex)
        store.save(cp)
        writer.commit()
    resumed_at = cp.pages
    writer.prepare_load(
        append_only=bool(
            unique_keys
            and writer.deletes_before_insert
            and cp.status == "running"
            and writer.holds_only_load(cp.load_id)
        )
    )
    if writer.append_only:
        logger.info(
            "%s holds no row of another load: inserting batches without deleting their keys", writer.table
        )
    meta = LoadMeta.new(cp.load_id)
    progress = Progress(logger, label=f"{writer.table}", every_seconds=progress_every)
    n_batches = 0
    try:
        if cp.status == "running":
            # Append-only loads insert smaller chunks (DuckDB holds less of a statement in memory) and still
            # commit every ``batch_rows``: without the per-batch delete a chunk costs no more than its rows. The
            # queue holds as many records either way, so a slow commit (a DuckDB checkpoint) does not stall the
            # fetch thread sooner.
            chunk_rows = min(batch_rows, _APPEND_CHUNK_ROWS) if writer.append_only else batch_rows
            # The fetch thread also reads each record's key and updated_at; the records stay JSON text.
            pipeline = PagePipeline(
                records_of(open_pages(cp.next_url), writer.spec.key),
                queue_size * max(1, batch_rows // chunk_rows),
                batch_rows=chunk_rows,
                batch_seconds=batch_seconds,
            )
            pending_pages = pending_rows = pending_fetched = 0
            pending_since = time.monotonic()

            def commit_pending() -> None:
                nonlocal n_batches, pending_pages, pending_rows, pending_fetched, pending_since
                store.save(cp)
                writer.commit()
                n_batches += 1
                progress.add(pending_pages, pending_rows)
                pending_pages = pending_rows = pending_fetched = 0
                pending_since = time.monotonic()
                if after_commit is not None:
                    after_commit(cp)

            with pipeline:
                for batch in pipeline:
                    fetched = sum(len(chunk) for chunk in batch)
                    written = writer.write(batch, meta) if fetched else 0
                    cp = cp.advance(
                        next_url=batch[-1].next_url,
                        pages=len(batch),
                        rows=written,
                        max_updated_at=_newest(batch),
                    )
                    pending_pages += len(batch)
                    pending_rows += written
                    pending_fetched += fetched
                    # Drop this chunk before waiting for the next one: memory holds the queued chunks only.
                    del batch
                    if (
                        pending_fetched >= batch_rows
                        or cp.next_url is None
                        or time.monotonic() - pending_since >= batch_seconds
                    ):
                        commit_pending()
                if pending_pages:  # the page iterator ended without a last page: commit what was written
                    commit_pending()
            if cp.status != FETCHED:
                # Only an explicit end of cursor finishes a load: a source that stops early leaves it resumable.
                raise IncompleteLoadError(
                    f"the pages of {writer.table} ended before the end of their cursor; the load stays "
                    f"resumable after page {cp.pages}"
                )
        pruned = 0
        if prune:
            pruned = writer.prune(cp.load_id)
            logger.info("Pruned %d rows not seen by load %s from %s", pruned, cp.load_id, writer.table)
        cp = cp.finished()
        store.save(cp)
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    result = TransferResult(
        table=str(writer.table),
        rows=cp.rows,
        pages=cp.pages,
        batches=n_batches,
        load_id=cp.load_id,
        resumed=resumed,
        resumed_at_page=resumed_at if resumed else 0,
        pruned=pruned,
        duration_s=round(progress.elapsed, 3),
        rows_per_second=round(progress.rate, 1),
        max_updated_at=cp.max_updated_at,
    )
    logger.info(
        "Loaded %d rows in %d pages into %s in %.1f s (%.0f rows/s this attempt)%s",
        result.rows,
        result.pages,
        result.table,
        result.duration_s,
        result.rows_per_second,
        f", resumed at page {resumed_at}" if resumed else "",
    )
    return result
