"""Resume points stored in the destination database, next to the data.

A transfer saves its checkpoint (the cursor URL after the last written page, counters, the load id) in the
SAME transaction as that batch's rows. Whatever kills the task, the committed checkpoint always matches the
committed rows, so a retry on any worker continues from exactly there: no gap, no duplicate. No Airflow import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from airflow_provider_credly.warehouse.schema import TableName
from airflow_provider_credly.warehouse.writers import SqlWriter

__all__ = ["CHECKPOINT_TABLE", "Checkpoint", "CheckpointStore", "slice_key"]

CHECKPOINT_TABLE = "credly_transfer_checkpoints"

RUNNING = "running"  # pages remain after next_url (None: from the start)
FETCHED = "fetched"  # every page is written; finishing steps (prune) remain
DONE = "done"

_FIELDS = (
    "transfer_key",
    "fingerprint",
    "load_id",
    "status",
    "next_url",
    "pages",
    "rows",
    "max_updated_at",
    "started_at",
    "updated_at",
)


def slice_key(key: str, index: int | str) -> str:
    """The checkpoint key of slice ``index`` of the sliced load ``key``: ``<key>/slice-<index>``."""
    return f"{key}/slice-{index}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Checkpoint:
    """The state of one transfer.

    :ivar key: identifies the transfer (DAG, task, map index, table).
    :ivar fingerprint: what is being loaded (endpoint, filters, format); a checkpoint is only resumed by
        the same request.
    :ivar load_id: stamped on every row the load writes (``_load_id``), used to prune the rows it did not see.
    :ivar status: ``running``, ``fetched`` or ``done``.
    :ivar next_url: the cursor to continue from (``None`` with ``running``: from the start).
    :ivar pages: pages written so far; :ivar rows: records written so far.
    :ivar max_updated_at: the newest ``updated_at`` written so far (ISO text).
    """

    key: str
    fingerprint: str
    load_id: str
    status: str = RUNNING
    next_url: str | None = None
    pages: int = 0
    rows: int = 0
    max_updated_at: str | None = None
    started_at: str = ""
    updated_at: str = ""

    @property
    def resumable(self) -> bool:
        """Whether a retry should continue this checkpoint rather than start over."""
        return self.status in (RUNNING, FETCHED) and (self.pages > 0 or self.status == FETCHED)

    def advance(
        self,
        *,
        next_url: str | None,
        pages: int,
        rows: int,
        max_updated_at: str | None,
        fetched: bool | None = None,
    ) -> Checkpoint:
        """The checkpoint after writing ``pages`` more pages (``next_url`` ``None``: the last page).

        :param fetched: every page is written (default: ``next_url`` is ``None``; a sliced load's parent
            checkpoint has no cursor of its own and says it when its last slice is fetched).
        """
        newest = max(filter(None, (self.max_updated_at, max_updated_at)), default=None)
        done = next_url is None if fetched is None else fetched
        return replace(
            self,
            status=FETCHED if done else RUNNING,
            next_url=next_url,
            pages=self.pages + pages,
            rows=self.rows + rows,
            max_updated_at=newest,
            updated_at=_now(),
        )

    def finished(self) -> Checkpoint:
        """The checkpoint of a completed transfer."""
        return replace(self, status=DONE, next_url=None, updated_at=_now())


class CheckpointStore:
    """Checkpoints in a table of the destination database, written through the transfer's own writer.

    :param writer: the transfer's writer (same connection, so same transaction as the data).
    :param table: the checkpoint table (default ``credly_transfer_checkpoints`` in the data table's schema).
    """

    def __init__(self, writer: SqlWriter, table: TableName | None = None) -> None:
        self.writer = writer
        self.table = table or writer.table.sibling(CHECKPOINT_TABLE)

    def ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` of the checkpoint table (no key constraint: rows are replaced)."""
        ints = {"pages", "rows"}
        cols = ", ".join(f"{f} {'BIGINT' if f in ints else 'TEXT'}" for f in _FIELDS)
        return f"CREATE TABLE IF NOT EXISTS {self.table} ({cols})"

    def load(self, key: str) -> Checkpoint | None:
        """The saved checkpoint of ``key``, if any."""
        rows = self.writer.fetchall(
            f"SELECT {', '.join(_FIELDS)} FROM {self.table} WHERE transfer_key = {self.writer.placeholder}",
            [key],
        )
        if not rows:
            return None
        values: dict[str, Any] = dict(zip(_FIELDS, rows[-1], strict=True))
        return Checkpoint(
            key=str(values["transfer_key"]),
            fingerprint=str(values["fingerprint"] or ""),
            load_id=str(values["load_id"] or ""),
            status=str(values["status"] or RUNNING),
            next_url=values["next_url"] or None,
            pages=int(values["pages"] or 0),
            rows=int(values["rows"] or 0),
            max_updated_at=values["max_updated_at"] or None,
            started_at=str(values["started_at"] or ""),
            updated_at=str(values["updated_at"] or ""),
        )

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the row of ``checkpoint.key`` (inside the caller's transaction: no commit)."""
        mark = self.writer.placeholder
        self.writer.execute(f"DELETE FROM {self.table} WHERE transfer_key = {mark}", [checkpoint.key])
        values = [
            checkpoint.key,
            checkpoint.fingerprint,
            checkpoint.load_id,
            checkpoint.status,
            checkpoint.next_url,
            checkpoint.pages,
            checkpoint.rows,
            checkpoint.max_updated_at,
            checkpoint.started_at or _now(),
            checkpoint.updated_at or _now(),
        ]
        self.writer.execute(
            f"INSERT INTO {self.table} ({', '.join(_FIELDS)}) VALUES ({self.writer.marks(len(_FIELDS))})",
            values,
        )

    def delete_slices(self, key: str) -> None:
        """Delete the slice checkpoints of ``key`` (:func:`slice_key`; inside the caller's transaction)."""
        prefix = slice_key(key, "")
        self.writer.execute(
            f"DELETE FROM {self.table} WHERE SUBSTR(transfer_key, 1, {len(prefix)}) = {self.writer.placeholder}",
            [prefix],
        )

    @staticmethod
    def new(key: str, fingerprint: str, load_id: str) -> Checkpoint:
        """A fresh checkpoint (nothing written yet)."""
        now = _now()
        return Checkpoint(key=key, fingerprint=fingerprint, load_id=load_id, started_at=now, updated_at=now)
