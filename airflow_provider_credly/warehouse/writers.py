"""Dialect writers: upsert a batch of records into a warehouse table over a DB-API connection.

Writers take :class:`~airflow_provider_credly.warehouse.records.PageRecords`: each page's records as the JSON
array text the API sent, so the bulk paths never build the records as Python objects.

* :class:`DuckDBWriter` hands DuckDB the batch as one list of page texts; DuckDB splits and parses them into
  typed columns (``from_json`` with the table's struct type) and keeps each record's text as the raw column;
  the batch's ids are deleted and the batch inserted in one transaction — no row-by-row inserts, no
  in-memory key index (DuckDB's ART index would grow memory with the table). With
  :attr:`SqlWriter.append_only` (set by ``run_transfer`` for a load of unique keys into a table holding no row
  of another load) the delete is skipped: it scans the whole id column.
* :class:`PostgresWriter` decodes the records' typed values in the client (msgspec) and streams them with
  binary ``COPY`` (text ``COPY`` for values of other types) into the table, or into a temporary staging
  table merged with one ``INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE``.
* :class:`SqlWriter` is the portable fallback for any other DB-API database (SQLite...): the records are
  parsed in Python, then ``DELETE`` of the batch's ids and ``executemany`` ``INSERT``.

:func:`writer_for` chooses the writer by the hook's SQL dialect (:func:`dialect_of`).

Writers never commit on their own except in :meth:`SqlWriter.ensure_tables`: the caller commits a batch
together with its checkpoint. No Airflow import.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from airflow_provider_credly.client.records_json import decode_records, encode_records
from airflow_provider_credly.warehouse.records import PageRecords, dedupe_by_key, raw_records, unique_records
from airflow_provider_credly.warehouse.schema import (
    LOAD_COLUMNS,
    Column,
    Dialect,
    TableName,
    TableSpec,
    child_columns,
    child_rows,
    column_type,
    create_table_sql,
    extract_row,
)

__all__ = [
    "DuckDBWriter",
    "LoadMeta",
    "PostgresWriter",
    "SqlWriter",
    "dedupe_by_key",
    "dialect_of",
    "open_waiting_for_lock",
    "writer_for",
]

_DELETE_CHUNK = 500


@dataclass(frozen=True)
class LoadMeta:
    """Values of the load columns: the load's id and its UTC timestamp."""

    load_id: str
    loaded_at: datetime

    @classmethod
    def new(cls, load_id: str) -> LoadMeta:
        """Metadata stamped now (UTC)."""
        return cls(load_id, datetime.now(UTC))


def _json(value: Any) -> str:
    return encode_records(value).decode()


class SqlWriter:
    """Portable writer: works on any DB-API connection (used for SQLite and unknown dialects).

    :param conn: an open DB-API connection (from ``DbApiHook.get_conn()``); the writer owns it.
    :param spec: the record kind's columns.
    :param table: the destination table.
    :param placeholder: the driver's parameter marker (``DbApiHook.placeholder``: ``%s`` or ``?``).
    :param children: also maintain the spec's child tables (``<table>_skills``...).
    :param store_raw: fill the ``raw`` column with each record's JSON; ``False`` leaves it ``NULL`` (the
        column stays, so a table can switch either way) and saves the bulk paths about a third of their
        CPU (benchmarks/README.md).
    """

    dialect: Dialect = "generic"
    #: whether :meth:`write` deletes the batch's keys before inserting (``False``: a merge statement)
    deletes_before_insert = True
    #: records per :meth:`write` of an append-only load (``None``: the whole commit batch); the load still
    #: commits every ``batch_rows``
    append_chunk_rows: int | None = 2_500
    #: the SQL type :meth:`ensure_tables` gives JSON columns (``None``: the dialect's)
    json_type: str | None = None

    def __init__(
        self,
        conn: Any,
        spec: TableSpec,
        table: TableName,
        *,
        placeholder: str = "%s",
        children: bool = False,
        store_raw: bool = True,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.table = table
        self.placeholder = placeholder
        self.children = children
        self.store_raw = store_raw
        #: skip the per-batch delete of the batch's keys: set by :func:`run_transfer` only when the table holds
        #: no row of another load and the cursor yields each key once (plain inserts cannot duplicate a key)
        self.append_only = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={str(self.table)!r})"

    def prepare_load(self, *, append_only: bool) -> None:
        """Called by :func:`run_transfer` before the first batch: whether batches are plain inserts."""
        self.append_only = append_only

    def start_group_commits(self) -> tuple[int, int] | None:
        """Called by :func:`run_transfer` when an append-only load may end its commits on the database's
        groups of rows, where it appends whole groups cheapest (DuckDB's row groups): the records per group
        and how many of them the group being filled holds already, the writer set for such commits.
        ``None``: commits cost the same wherever they fall."""
        return None

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Data columns then load columns, in table order."""
        return (*self.spec.columns, *LOAD_COLUMNS)

    def child_table(self, suffix: str) -> TableName:
        """Name of a child table (``<table>_<suffix>``)."""
        return self.table.sibling(f"{self.table.name}_{suffix}")

    def marks(self, n: int) -> str:
        """``n`` comma-separated parameter markers."""
        return ", ".join([self.placeholder] * n)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; returns the row count (``-1`` when unknown)."""
        cur = self.conn.cursor()
        try:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            return int(getattr(cur, "rowcount", -1) or 0)
        finally:
            cur.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        if not rows:
            return
        cur = self.conn.cursor()
        try:
            cur.executemany(sql, rows)
        finally:
            cur.close()

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        cur = self.conn.cursor()
        try:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def commit(self) -> None:
        """Commit the open transaction."""
        self.conn.commit()

    def rollback(self) -> None:
        """Roll back the open transaction (errors while rolling back are ignored)."""
        try:
            self.conn.rollback()
        except Exception:  # the connection may already be gone; nothing was committed
            pass

    def close(self) -> None:
        """Close the connection."""
        try:
            self.conn.close()
        except Exception:
            pass

    # -- DDL -----------------------------------------------------------------------------------------

    def ensure_tables(self, extra_ddl: Iterable[str] = ()) -> None:
        """Create the table (and child tables) if missing, plus ``extra_ddl``; commits."""
        for stmt in [
            *create_table_sql(
                self.spec, self.table, self.dialect, children=self.children, json_type=self.json_type
            ),
            *extra_ddl,
        ]:
            self.execute(stmt)
        self.commit()

    # -- writes --------------------------------------------------------------------------------------

    def _meta_values(self, meta: LoadMeta) -> tuple[Any, ...]:
        return meta.load_id, meta.loaded_at

    def _delete_keys(self, table: TableName, column: str, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _DELETE_CHUNK):
            chunk = keys[start : start + _DELETE_CHUNK]
            self.execute(f"DELETE FROM {table} WHERE {column} IN ({self.marks(len(chunk))})", chunk)

    def upsert(self, items: Sequence[Mapping[str, Any]], meta: LoadMeta) -> int:
        """Insert or update parsed records by key (no commit); returns the number of distinct records written."""
        return self.write([PageRecords.of_items(items, self.spec.key)], meta) if items else 0

    def write(
        self, chunks: Sequence[PageRecords], meta: LoadMeta, *, replace_keys: bool | None = None
    ) -> int:
        """Insert or update the records of ``chunks`` by key (no commit); returns the distinct records written.

        :param replace_keys: replace rows with the same keys (``None``: unless the load is :attr:`append_only`;
            ``True`` in an append-only load: a batch that may repeat keys committed before).
        """
        replace = self._replacing(replace_keys)
        records = dedupe_by_key((r for chunk in chunks for r in chunk.decode()), self.spec.key)
        if not records:
            return 0
        keys = [str(r[self.spec.key]) for r in records]
        names = ", ".join(c.name for c in self.all_columns)
        if replace:
            self._delete_keys(self.table, self.spec.key, keys)
        extra = self._meta_values(meta)
        rows = [(*extract_row(self.spec, r, raw=self.store_raw), *extra) for r in records]
        self.executemany(
            f"INSERT INTO {self.table} ({names}) VALUES ({self.marks(len(self.all_columns))})", rows
        )
        self._write_children(records, keys, replace)
        return len(records)

    def _replacing(self, replace_keys: bool | None) -> bool:
        return not self.append_only if replace_keys is None else replace_keys

    def _write_children_of_texts(self, texts: Sequence[bytes], keys: Sequence[str], replace: bool) -> None:
        # the bulk paths hand the parent rows to the database as text; child rows are built in Python
        if self.children:
            self._write_children([r for text in texts for r in decode_records(text)], keys, replace)

    def _write_children(
        self, records: Sequence[Mapping[str, Any]], keys: Sequence[str], replace: bool
    ) -> None:
        if not self.children:
            return
        for child in self.spec.children:
            table = self.child_table(child.suffix)
            if replace:
                self._delete_keys(table, self.spec.parent_key, keys)
            rows = [row for r in records for row in child_rows(self.spec, child, r)]
            self._insert_child_rows(table, child_columns(self.spec, child), rows)

    def _insert_child_rows(
        self, table: TableName, columns: Sequence[Column], rows: list[tuple[Any, ...]]
    ) -> None:
        names = ", ".join(c.name for c in columns)
        self.executemany(f"INSERT INTO {table} ({names}) VALUES ({self.marks(len(columns))})", rows)

    def prune(self, load_id: str) -> int:
        """Delete rows that the load ``load_id`` did not write (no commit); returns how many were deleted."""
        deleted = self.execute(
            f"DELETE FROM {self.table} WHERE _load_id IS NULL OR _load_id <> {self.placeholder}", [load_id]
        )
        if self.children:
            for child in self.spec.children:
                self.execute(
                    f"DELETE FROM {self.child_table(child.suffix)} WHERE {self.spec.parent_key} NOT IN "
                    f"(SELECT {self.spec.key} FROM {self.table})"
                )
        return max(deleted, 0)

    def count(self) -> int:
        """Rows in the table."""
        return int(self.fetchall(f"SELECT COUNT(*) FROM {self.table}")[0][0])

    def holds_only_load(self, load_id: str) -> bool:
        """Whether every row of the table was written by the load ``load_id`` (an empty table: ``True``)."""
        rows = self.fetchall(
            f"SELECT 1 FROM {self.table} WHERE _load_id IS NULL OR _load_id <> {self.placeholder} LIMIT 1",
            [load_id],
        )
        return not rows

    def update_set(self) -> str:
        """``SET`` list of a merge: every non-key column from ``excluded``."""
        return ", ".join(f"{c.name} = excluded.{c.name}" for c in self.all_columns if c.name != self.spec.key)


def _json_read_type(c: Column) -> str:
    """The DuckDB type ``from_json`` reads a column's value as: its column type, timestamps as text (cast
    to UTC by the insert)."""
    return "VARCHAR" if c.kind == "timestamp" else column_type(c.kind, "duckdb")


def _struct_type(columns: Sequence[Column]) -> dict[str, Any]:
    """The DuckDB ``from_json`` structure reading every column's path."""
    root: dict[str, Any] = {}
    for c in columns:
        if not c.path:
            continue
        node = root
        for part in c.path[:-1]:
            node = node.setdefault(part, {})
        node[c.path[-1]] = _json_read_type(c)
    return root


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: DuckDB's default rows per row group
DUCKDB_ROW_GROUP_ROWS = 122_880
#: DuckDB's default WAL size between automatic checkpoints, as ``current_setting`` shows it
_DUCKDB_DEFAULT_CHECKPOINT = "16.0 MiB"
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)? ?[KMGT]i?B$")


class DuckDBWriter(SqlWriter):
    """DuckDB: the batch as one list-of-JSON-texts parameter, parsed and merged inside DuckDB.

    During a load the writer raises DuckDB's automatic checkpoint threshold to ``checkpoint_threshold``
    unless the connection configured one (see :meth:`_tune_checkpoints`); :meth:`close` restores it.

    :param checkpoint_threshold: WAL size between automatic checkpoints during a load (``None``: leave
        DuckDB's setting alone).
    :param row_group_rows: the rows of a row group that commits of an append-only load end on (``None``: the
        database's row group size).
    """

    dialect: Dialect = "duckdb"
    # One INSERT per committed batch: several per transaction made DuckDB's commits (WAL and checkpoints)
    # cost far more (1M badges at 1,000 per page, 2,500-record chunks: 44.6 s of CPU; one statement per
    # 10,000-record batch: 25.2 s, peak RSS 254 -> 264 MB; benchmarks/README.md).
    append_chunk_rows = None

    def __init__(
        self,
        conn: Any,
        spec: TableSpec,
        table: TableName,
        *,
        checkpoint_threshold: str | None = "256MiB",
        row_group_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("placeholder", "?")
        if row_group_rows is not None and row_group_rows < 1:
            raise ValueError(f"row_group_rows must be at least 1, got {row_group_rows!r}")
        self.row_group_rows = row_group_rows
        super().__init__(conn, spec, table, **kwargs)
        if checkpoint_threshold is not None and not _SIZE.match(checkpoint_threshold):
            raise ValueError(
                f"checkpoint_threshold must be a size such as '256MiB', got {checkpoint_threshold!r}"
            )
        self.checkpoint_threshold = checkpoint_threshold
        self.tuned_checkpoints = False
        self._merge_sql = self._build_merge()
        # a timestamp without an offset is UTC, as Credly means it, not the session's time zone (by default
        # the machine's): the connection is the writer's own, so the setting ends with it
        try:
            self.conn.execute("SET TimeZone = 'UTC'")
        except Exception:  # no ICU extension: DuckDB then has no time zones and reads them as UTC already
            pass
        self.conn.execute("BEGIN TRANSACTION")

    def prepare_load(self, *, append_only: bool) -> None:
        """As :meth:`SqlWriter.prepare_load`; the load also gets fewer, larger checkpoints."""
        super().prepare_load(append_only=append_only)
        if not self.tuned_checkpoints:
            self.tuned_checkpoints = self._tune_checkpoints(self.checkpoint_threshold)

    def start_group_commits(self) -> tuple[int, int] | None:
        """DuckDB's row groups: a transaction that appends at least a whole row group writes it to the file
        compressed at once (an "optimistic write": no WAL, nothing kept uncompressed in memory until the
        next checkpoint). A first load committed every 10,000 rows spent about half its writer CPU on that
        (300k badges with the raw column: 6.5-6.8 s, ending every commit on a row group 4.1-4.6 s;
        benchmarks/README.md).

        The checkpoint threshold raised by :meth:`prepare_load` goes back to DuckDB's default: the commit of
        a part of a row group (the load's last, or one after ``batch_seconds``) larger than it then
        checkpoints instead of writing its rows to the WAL first (a 100k-badge load: 1.65-1.71 s of writer
        CPU against 1.97-2.16 s, the ``close`` 0.01 s against 0.45 s), and whole row groups leave little WAL.

        The load's first group ends at half a row group: its last commit compresses, after the last page,
        every row since the last group's end (a load smaller than one group: all of them), and a commit
        that checkpoints part of a group makes DuckDB start the next group there, so the groups after it
        stay whole. That halves the wait for loads under 1.5 groups (100k badges in the outsider's setup:
        1.17x the raw fetch's wall time and 1.95x its CPU, against 1.26x and 2.08x; 1M badges: no change). With ``row_group_rows`` set, the groups are
        counted in the table's rows instead.
        """
        if not self.append_only:
            return None
        if self.tuned_checkpoints:
            self.conn.execute("RESET GLOBAL checkpoint_threshold")
            self.tuned_checkpoints = False
        if self.row_group_rows is not None:  # groups counted in the table's rows, as given
            ((count,),) = self.fetchall(f"SELECT count(*) FROM {self.table}")
            return self.row_group_rows, int(count) % self.row_group_rows
        # a database just opened appends in a new row group, whatever its last one holds
        size = self._database_row_group_rows()
        return size, size // 2

    def _database_row_group_rows(self) -> int:
        # set only by ``ATTACH ... (ROW_GROUP_SIZE n)``, and then listed among the database's options
        try:
            rows = self.fetchall(
                "SELECT options FROM duckdb_databases() WHERE database_name = current_database()"
            )
            size = int(dict(rows[0][0] or {}).get("row_group_size", DUCKDB_ROW_GROUP_ROWS))
        except Exception:  # an older DuckDB without the column: its fixed size
            size = DUCKDB_ROW_GROUP_ROWS
        return max(1, size)

    def _tune_checkpoints(self, threshold: str | None) -> bool:
        # DuckDB checkpoints every 16 MiB of WAL by default (about every 15,000 badges). Each checkpoint
        # rewrites every row group holding rows deleted since the last one, and a reload deletes each batch's
        # ids: a 300k-badge reload spent 13 s of 17 s committing, 2 s with a 1 GB threshold. A first load's
        # checkpoints recompress the row group being filled each time: 1M badges took 21.5 s of CPU at the
        # default, 18.5-19.4 s at 256 MiB (one core, benchmarks/README.md).
        # The setting is the database instance's: it is raised only from DuckDB's default and reset on close.
        if threshold is None:
            return False
        current = self.conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        if not current or current[0] != _DUCKDB_DEFAULT_CHECKPOINT:
            return False  # set by the connection (``settings`` extra) or by someone else: theirs
        self.conn.execute(f"SET GLOBAL checkpoint_threshold = '{threshold}'")
        return True

    # DuckDB's ``cursor()`` is a second connection with its own transaction: use the connection itself.
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement on the connection; returns the changed row count of DML (else ``-1``)."""
        result = self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)
        try:
            row = result.fetchone()
        except Exception:  # statements without a result set
            return -1
        return int(row[0]) if row and isinstance(row[0], int) else -1

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        if rows:
            self.conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        result = self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)
        return [tuple(r) for r in result.fetchall()]

    def _expr(self, c: Column) -> str:
        if not c.path:
            return "r" if self.store_raw else "NULL"
        ref = "s." + ".".join(_q(p) for p in c.path)
        if c.kind == "timestamp":
            # the instant's UTC microseconds as a plain TIMESTAMP: ``AT TIME ZONE 'UTC'`` went through ICU's
            # calendar for every value (half the cost of the five timestamp columns)
            return f"make_timestamp(epoch_us(CAST({ref} AS TIMESTAMPTZ)))"
        return ref

    def _build_merge(self) -> str:
        # $1 is the batch's page texts as UTF-8 bytes (BLOB[]; ``decode`` makes them VARCHAR, no Python str
        # built or encoded again). With the raw column DuckDB splits each into its records
        # (JSON[]), then parses every record into the typed struct and keeps its text; without it, one pass
        # parses each page straight into a list of structs.
        struct = _json(_struct_type(self.spec.columns)).replace("'", "''")
        names = ", ".join(c.name for c in self.all_columns)
        exprs = ", ".join(self._expr(c) for c in self.spec.columns)
        pages = "SELECT decode(b) AS p FROM (SELECT unnest($1::BLOB[]) AS b)"
        if self.store_raw:
            records = f"SELECT unnest(from_json(p, '[\"JSON\"]')) AS r FROM ({pages})"
            source = f"SELECT r, from_json(r, '{struct}') AS s FROM ({records})"
        else:
            source = f"SELECT unnest(from_json(p, '[{struct}]')) AS s FROM ({pages})"
        return f"INSERT INTO {self.table} ({names}) SELECT {exprs}, $2, $3 FROM ({source})"

    def _meta_values(self, meta: LoadMeta) -> tuple[Any, ...]:
        return meta.load_id, meta.loaded_at.astimezone(UTC).replace(tzinfo=None)

    def commit(self) -> None:
        """Commit and open the next transaction (DuckDB's Python API autocommits otherwise)."""
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN TRANSACTION")

    def rollback(self) -> None:
        """Roll back and open the next transaction."""
        try:
            self.conn.execute("ROLLBACK")
            self.conn.execute("BEGIN TRANSACTION")
        except Exception:
            pass

    def close(self) -> None:
        """Roll back anything uncommitted, restore the checkpoint threshold and close."""
        try:
            self.conn.execute("ROLLBACK")
        except Exception:
            pass
        if self.tuned_checkpoints:
            try:
                self.conn.execute("RESET GLOBAL checkpoint_threshold")
            except Exception:  # the connection is gone: so is the setting
                pass
        super().close()

    def write(
        self, chunks: Sequence[PageRecords], meta: LoadMeta, *, replace_keys: bool | None = None
    ) -> int:
        """Delete the batch's ids, then one ``INSERT ... SELECT FROM from_json(...)`` for the whole batch
        (same transaction: readers never see a badge missing or twice)."""
        replace = self._replacing(replace_keys)
        texts, keys = unique_records(chunks, self.spec.key)
        if not keys:
            return 0
        if replace:  # the delete scans the whole id column: skipped when no key can repeat
            self._delete_keys(self.table, self.spec.key, keys)
        self.conn.execute(self._merge_sql, [texts, *self._meta_values(meta)])
        self._write_children_of_texts(texts, keys, replace)
        return len(keys)

    def _delete_keys(self, table: TableName, column: str, keys: Sequence[str]) -> None:
        self.conn.execute(
            f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?::VARCHAR[]))", [list(keys)]
        )

    def _insert_child_rows(
        self, table: TableName, columns: Sequence[Column], rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        struct = _json([{c.name: _json_read_type(c) for c in columns}]).replace("'", "''")
        payload = _json([dict(zip([c.name for c in columns], row, strict=True)) for row in rows])
        names = ", ".join(c.name for c in columns)
        cols = ", ".join(f"s.{_q(c.name)}" for c in columns)
        self.conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {cols} FROM (SELECT unnest(from_json(?, '{struct}')) AS s)",
            [payload],
        )


def _without_nul(text: bytes) -> bytes:
    """A page text without NUL characters, which PostgreSQL text and jsonb cannot hold (rare, so checked on
    the text first)."""
    return encode_records(_strip_nul(decode_records(text))) if b"\\u0000" in text else text


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


@functools.cache
def _fields_decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """Decodes a JSON array of records into structs of just ``fields`` (msgspec skips the rest)."""
    names = [f"f{i}" for i in range(len(fields))]
    row = msgspec.defstruct(
        "RecordFields",
        [(n, Any, None) for n in names],
        rename=dict(zip(names, fields, strict=True)),
        gc=False,
    )
    return msgspec.json.Decoder(list[row])  # type: ignore[valid-type]


_JSONB_V1 = b"\x01"


@functools.cache
def _ready_dumper_class(oid: int) -> type:
    """A psycopg dumper sending ready binary values as they are (jsonb: ``_JSONB_V1`` + the JSON bytes;
    json: the JSON bytes)."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class ReadyBinaryDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Any) -> Any:
            return obj

    ReadyBinaryDumper.oid = oid
    return ReadyBinaryDumper


def _ready_binary_dumper(conn: Any, type_name: str) -> type:
    """:func:`_ready_dumper_class` for the connection's ``json`` or ``jsonb`` type (``COPY.set_types`` picks
    dumpers by type: registered for ``bytes`` on the cursor, it is the one such columns get)."""
    return _ready_dumper_class(conn.adapters.types[type_name].oid)


#: the msgspec types that decode a column's JSON value exactly as PostgreSQL's ``COPY`` text takes it
#: (any other JSON type for the column fails the decode: the page then takes the general path)
_COPY_READY_TYPES: Mapping[str, Any] = {
    "text": str | None,
    "timestamp": str | None,
    "bool": bool | None,
    "int": int | None,
}

#: the msgspec types that decode a column's JSON value into what binary ``COPY`` sends: timestamps as aware
#: datetimes (RFC 3339 with an offset; anything else fails the decode and the batch goes as text, where
#: PostgreSQL parses it as before), integers within ``bigint``
_BINARY_READY_TYPES: Mapping[str, Any] = {
    "text": str | None,
    "timestamp": Annotated[datetime, msgspec.Meta(tz=True)] | None,
    "bool": bool | None,
    "int": Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | None,
}

#: per column kind: the type binary ``COPY`` is declared with, and ``format_type`` of the table column it needs
#: (a JSON column is sent as its table column's own type, ``jsonb`` or ``json``: see :data:`RAW_JSON_TYPES`)
_BINARY_COPY_TYPES: Mapping[str, tuple[str, str]] = {
    "text": ("text", "text"),
    "timestamp": ("timestamptz", "timestamp with time zone"),
    "bool": ("bool", "boolean"),
    "int": ("int8", "bigint"),
}

#: the PostgreSQL types the ``raw`` column may have (``raw_json_type``): ``json`` (default: the record's text
#: as sent, validated only, the server's load CPU about a third lower, each query parsing it again;
#: benchmarks/README.md) or ``jsonb`` (parsed once at load: containment operators, GIN indexes)
RAW_JSON_TYPES = ("jsonb", "json")
#: the ``raw`` column's type when neither the operator nor the writer is told one
DEFAULT_RAW_JSON_TYPE = "json"


def check_raw_json_type(value: str) -> str:
    """``value`` if it is one of :data:`RAW_JSON_TYPES`, else :class:`ValueError`."""
    if value not in RAW_JSON_TYPES:
        raise ValueError(f"raw_json_type must be one of {', '.join(RAW_JSON_TYPES)}, got {value!r}")
    return value


@dataclass(frozen=True)
class _TypedRecords:
    """Decodes a page straight into the COPY values of the columns that have a path.

    :ivar decoder: decodes a JSON array of records into nested structs typed by :data:`_COPY_READY_TYPES`
        (or :data:`_BINARY_READY_TYPES`).
    :ivar flatten: one record's struct to its column values, in the order of :attr:`columns`.
    :ivar columns: indexes into ``spec.columns`` of the values :attr:`flatten` returns.
    """

    decoder: msgspec.json.Decoder[Any]
    flatten: Callable[[Any], tuple[Any, ...]]
    columns: tuple[int, ...]


def _typed_records(
    columns: Sequence[Column], ready: Mapping[str, Any] = _COPY_READY_TYPES
) -> _TypedRecords | None:
    """The :class:`_TypedRecords` of ``columns`` with the value types ``ready``, or ``None`` when a kind has
    no ready type (``json``) or a path is both a value and an object (the general path handles those)."""
    tree: dict[str, Any] = {}
    for i, c in enumerate(columns):
        if not c.path:
            continue
        if c.kind not in ready:
            return None
        node = tree
        for part in c.path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return None
        if c.path[-1] in node:
            return None
        node[c.path[-1]] = i
    order: list[int] = []
    struct, flatten = _node_struct(tree, columns, order, ready)
    return _TypedRecords(msgspec.json.Decoder(list[struct]), flatten, tuple(order))  # type: ignore[valid-type]


def _node_struct(
    node: Mapping[str, Any], columns: Sequence[Column], order: list[int], ready: Mapping[str, Any]
) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """A struct type for one object of the column paths (its values first, then its objects) and the
    function flattening it; appends the columns it yields to ``order``."""
    leaves = [(name, i) for name, i in node.items() if isinstance(i, int)]
    objects = [(name, child) for name, child in node.items() if not isinstance(child, int)]
    fields: list[tuple[str, Any, Any]] = []
    for n, (_name, i) in enumerate(leaves):
        fields.append((f"f{n}", ready[columns[i].kind], None))
        order.append(i)
    flatteners = []
    for n, (_name, child) in enumerate(objects, start=len(leaves)):
        sub, sub_flatten = _node_struct(child, columns, order, ready)
        fields.append((f"f{n}", sub | None, None))
        flatteners.append(sub_flatten)
    names = [name for name, _ in leaves] + [name for name, _ in objects]
    struct = msgspec.defstruct(
        "CopyFields", fields, rename={f[0]: name for f, name in zip(fields, names, strict=True)}, gc=False
    )
    nones: tuple[Any, ...] = (None,) * _width(node)
    n_leaves = len(leaves)
    astuple = msgspec.structs.astuple

    if not flatteners:

        def flatten(value: Any) -> tuple[Any, ...]:
            return nones if value is None else astuple(value)

    else:

        def flatten(value: Any) -> tuple[Any, ...]:
            if value is None:
                return nones
            values = astuple(value)
            out = values[:n_leaves]
            for k, sub_flatten in enumerate(flatteners):
                out += sub_flatten(values[n_leaves + k])
            return out

    return struct, flatten


def _width(node: Mapping[str, Any]) -> int:
    """How many column values an object of the column paths holds (its own and its objects')."""
    return sum(1 if isinstance(v, int) else _width(v) for v in node.values())


def _as_text(value: Any) -> str:
    """A JSON value as PostgreSQL's ``->>`` gives it: strings as they are, anything else as JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _json(value)
    return str(value)


class PostgresWriter(SqlWriter):
    """PostgreSQL: each record parsed once in the client (msgspec, only the table's fields), its typed columns
    ``COPY``-ed straight into the table for an append-only load, else into a temporary table merged with one
    ``INSERT ... ON CONFLICT`` statement.

    A page whose values all have their column's JSON type (strings for text, RFC 3339 timestamps with an
    offset, booleans...) is decoded straight into binary ``COPY`` values (:func:`_typed_records`; the raw
    column as the record's bytes): the server parses no value text, timestamps arrive as integers, which
    cut its CPU by a third. The batch's pages go into one ``COPY``, each sent as soon as it is decoded, so
    the server stores one page while the client decodes the next (a 100k-badge replay: 1.9 s -> 1.2 s with
    ``raw`` as ``json``; benchmarks/README.md). Any other page goes in a text ``COPY`` after it, in the same
    transaction: clean pages decoded into text values, others converted value by value in Python,
    PostgreSQL casting each value. A table whose columns are not of exactly the types the writer creates
    (made by hand, ``raw`` as ``text``...) always gets text ``COPY``; ``raw`` may be ``jsonb`` or ``json``
    (``raw_json_type``).

    The jsonb staging this replaces (``COPY`` of the page texts, ``jsonb_array_elements`` and ``->>`` in the
    merge) cost the server ~4x the CPU (benchmarks/README.md).

    :param raw_json_type: the type of the ``raw`` column when the writer creates the table, one of
        :data:`RAW_JSON_TYPES` (an existing table keeps its own).
    """

    dialect: Dialect = "postgres"
    # an append-only load skips the ON CONFLICT merge: it copies straight into the table (a key the table
    # already held would fail on the primary key, never duplicate)
    deletes_before_insert = True

    def __init__(
        self,
        conn: Any,
        spec: TableSpec,
        table: TableName,
        *,
        raw_json_type: str = DEFAULT_RAW_JSON_TYPE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("placeholder", "%s")
        super().__init__(conn, spec, table, **kwargs)
        self.json_type = check_raw_json_type(raw_json_type)
        self.stage = f"credly_stage_{spec.kind}"
        self._staged = False
        # each column's record field (its path's first step), the rest of its path and its kind
        self._fields = tuple(dict.fromkeys(c.path[0] for c in spec.columns if c.path))
        index = {name: i for i, name in enumerate(self._fields)}
        self._getters = [(index[c.path[0]], c.path[1:], c.kind) if c.path else None for c in spec.columns]
        # the typed decode gives the columns with a path in its own order: the COPY names them in that order
        # (then the raw columns), and the general path's rows are put in the same order
        self._typed = _typed_records(spec.columns)
        pathless = tuple(i for i, c in enumerate(spec.columns) if not c.path)
        self._order = (
            (*self._typed.columns, *pathless) if self._typed is not None else tuple(range(len(spec.columns)))
        )
        self._pathless = len(pathless)
        copy_columns = [spec.columns[i] for i in self._order] + list(LOAD_COLUMNS)
        self._copy_column_names = [c.name for c in copy_columns]
        self._copy_names = ", ".join(self._copy_column_names)
        # binary COPY (no text parsing of each value in the server, timestamps sent as integers): for a
        # psycopg 3 connection in UTF-8 whose table has exactly the columns' types (checked on first use)
        self._binary = _typed_records(spec.columns, _BINARY_READY_TYPES)
        if self._binary is not None and self._typed is not None:
            assert self._binary.columns == self._typed.columns  # the same tree: the same COPY order
        self._copy_kinds = [c.kind for c in copy_columns]
        self._binary_ok: bool | None = None
        # set by the catalog check: the table's JSON columns' type (``json_type`` is only what the writer
        # creates) and the types binary COPY declares
        self._table_json_type = "jsonb"
        self._binary_copy_types: list[str] = []

    def _values(self, fields: Sequence[Any], raw: str | None) -> list[Any]:
        out: list[Any] = []
        for getter in self._getters:
            if getter is None:
                out.append(raw)
                continue
            index, rest, kind = getter
            value = fields[index]
            for part in rest:
                value = value.get(part) if type(value) is dict else None
            # the common cases first (a str or None): this runs for every value of every record
            if (
                value is None
                or (type(value) is str and kind != "json")
                or (type(value) is bool and kind == "bool")
            ):
                out.append(value)
            else:
                out.append(_json(value) if kind == "json" else _as_text(value))
        return out

    def _rows(self, text: bytes, extra: tuple[Any, ...]) -> Iterable[tuple[Any, ...]]:
        """The table rows of one page text: typed values, the raw text (or ``None``), the load columns."""
        text = _without_nul(text)
        typed = self._typed
        if typed is not None:
            try:
                records: list[Any] | None = typed.decoder.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError):  # a value of another type
                records = None  # the general path converts it
            if records is not None:
                yield from self._typed_rows(typed, records, text, extra)
                return
        order = self._order
        for row in self._general_rows(text):
            yield (*(row[i] for i in order), *extra) if typed is not None else (*row, *extra)

    def _typed_rows(
        self, typed: _TypedRecords, records: list[Any], text: bytes, extra: tuple[Any, ...]
    ) -> Iterator[tuple[Any, ...]]:
        """Rows from the typed decode: each record's values are ready for ``COPY`` as msgspec gives them
        (two C calls per record instead of a Python step per value)."""
        flatten = typed.flatten
        if self.store_raw:
            raws = [bytes(r).decode() for r in raw_records(text)]
            for record, raw in zip(records, raws, strict=True):
                yield flatten(record) + (raw,) * self._pathless + extra
        else:
            tail = (None,) * self._pathless + extra
            for record in records:
                yield flatten(record) + tail

    def _general_rows(self, text: bytes) -> Iterator[list[Any]]:
        """Rows (in ``spec.columns`` order) of a page whose values are not all of their column's JSON type:
        each value converted in Python as PostgreSQL's ``->>`` gives it."""
        try:
            heads: list[Any] = _fields_decoder(self._fields).decode(text)
            values = [msgspec.structs.astuple(h) for h in heads]
            raws = [bytes(r).decode() for r in raw_records(text)] if self.store_raw else None
        except (msgspec.DecodeError, msgspec.ValidationError):  # values msgspec cannot read (NaN...)
            items = decode_records(text)
            values = [tuple(item.get(f) for f in self._fields) for item in items]
            raws = [_json(item) for item in items] if self.store_raw else None
        for i, fields in enumerate(values):
            yield self._values(fields, raws[i] if raws is not None else None)

    def write(
        self, chunks: Sequence[PageRecords], meta: LoadMeta, *, replace_keys: bool | None = None
    ) -> int:
        """``COPY`` the batch's rows into the table (append-only) or into the staging table, then
        ``INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE``."""
        replace = self._replacing(replace_keys)
        texts, keys = unique_records(chunks, self.spec.key)
        if not keys:
            return 0
        names = ", ".join(c.name for c in self.all_columns)
        extra = self._meta_values(meta)
        target: TableName | str = self.table
        if replace:
            if not self._staged:
                self.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.stage} (LIKE {self.table})")
                self._staged = True
            self.execute(f"TRUNCATE {self.stage}")
            target = self.stage
        odd = self._copy_binary(target, texts, extra)
        if odd:
            # PostgreSQL reads a timestamp without an offset in the session's time zone: UTC, as Credly
            # means it, for this batch's transaction only
            self.execute("SET LOCAL TIME ZONE 'UTC'")
            self._copy_rows(
                target, self._copy_names, (row for text in odd for row in self._rows(text, extra))
            )
        if replace:
            self.execute(
                f"INSERT INTO {self.table} ({names}) SELECT {names} FROM {self.stage} "
                f"ON CONFLICT ({self.spec.key}) DO UPDATE SET {self.update_set()}"
            )
        self._write_children_of_texts(texts, keys, replace)
        return len(keys)

    def _binary_usable(self) -> bool:
        """Whether batches may go as binary ``COPY``: psycopg 3, UTF-8, and the table's columns of exactly the
        types the values are sent as (a table created otherwise, e.g. ``raw`` as ``text``, goes as text)."""
        if self._binary_ok is None:
            self._binary_ok = False
            cur = self.conn.cursor()
            try:
                if (
                    hasattr(cur, "copy")
                    and getattr(getattr(self.conn, "info", None), "encoding", "") == "utf-8"
                ):
                    cur.execute(
                        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                        [str(self.table)],
                    )
                    self._binary_ok = self._read_binary_types(dict(cur.fetchall()))
            finally:
                cur.close()
        return self._binary_ok

    def _read_binary_types(self, have: Mapping[str, str]) -> bool:
        """Whether the table's columns (name -> ``format_type``) take binary ``COPY``; sets the types it
        declares (JSON columns: the table's one type, ``jsonb`` or ``json``)."""
        columns = list(zip(self._copy_column_names, self._copy_kinds, strict=True))
        json_types = {have.get(name) for name, kind in columns if kind == "json"} or {"jsonb"}
        json_type = json_types.pop() if len(json_types) == 1 else None
        if json_type not in RAW_JSON_TYPES or any(
            have.get(name) != _BINARY_COPY_TYPES[kind][1] for name, kind in columns if kind != "json"
        ):
            return False
        self._table_json_type = json_type
        self._binary_copy_types = [
            json_type if k == "json" else _BINARY_COPY_TYPES[k][0] for k in self._copy_kinds
        ]
        return True

    def _binary_page_rows(self, text: bytes, extra: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """A page's rows for binary ``COPY``, or ``None`` when it holds a value the binary decode does not
        take (that page then goes as text)."""
        binary = self._binary
        assert binary is not None
        text = _without_nul(text)
        try:
            records = binary.decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        flatten = binary.flatten
        if not self.store_raw:
            tail = (None,) * self._pathless + extra
            return [flatten(rec) + tail for rec in records]
        # jsonb's binary form is a version byte and the JSON text, json's the text: the record's bytes as sent
        prefix = _JSONB_V1 if self._table_json_type == "jsonb" else b""
        raws = [(prefix + bytes(r),) * self._pathless for r in raw_records(text)]
        return [flatten(rec) + raw + extra for rec, raw in zip(records, raws, strict=True)]

    def _copy_binary(
        self, table: TableName | str, texts: Sequence[bytes], extra: tuple[Any, ...]
    ) -> list[bytes]:
        """Binary ``COPY`` of the pages the binary decode takes, each sent as soon as it is decoded (the server
        stores one page while the client decodes the next); returns the other pages, for text ``COPY``."""
        if self._binary is None or not self._binary_usable():
            return list(texts)
        odd: list[bytes] = []
        with contextlib.ExitStack() as stack:
            copy = None
            for text in texts:
                rows = self._binary_page_rows(text, extra)
                if rows is None:
                    odd.append(text)
                    continue
                if copy is None:  # opened on the first page that goes as binary
                    cur = stack.enter_context(contextlib.closing(self.conn.cursor()))
                    cur.adapters.register_dumper(
                        bytes, _ready_binary_dumper(self.conn, self._table_json_type)
                    )
                    copy = stack.enter_context(
                        cur.copy(f"COPY {table} ({self._copy_names}) FROM STDIN (FORMAT BINARY)")
                    )
                    copy.set_types(self._binary_copy_types)
                for row in rows:
                    copy.write_row(row)
        return odd

    def _copy_rows(self, table: TableName | str, names: str, rows: Iterable[Sequence[Any]]) -> None:
        cur = self.conn.cursor()
        try:
            if hasattr(cur, "copy"):  # psycopg 3
                with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:  # psycopg2
                marks = self.marks(len(names.split(",")))
                cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))
        finally:
            cur.close()

    def _delete_keys(self, table: TableName, column: str, keys: Sequence[str]) -> None:
        self.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [list(keys)])

    def _insert_child_rows(
        self, table: TableName, columns: Sequence[Column], rows: list[tuple[Any, ...]]
    ) -> None:
        if rows:
            self._copy_rows(table, ", ".join(c.name for c in columns), rows)


#: the bulk writers by SQL dialect name (SQLAlchemy's names, plus the connection types that say the same)
_BULK_WRITERS: Mapping[str, type[SqlWriter]] = {
    "duckdb": DuckDBWriter,
    "postgresql": PostgresWriter,
    "postgres": PostgresWriter,
}


def dialect_of(hook: Any) -> str:
    """The SQL dialect of a ``DbApiHook``, lower case: its ``dialect_name`` (common-sql), or its connection
    type when that says nothing (``default``: a hook whose URI SQLAlchemy cannot resolve, e.g. DuckDB
    without ``duckdb-engine``)."""
    try:
        name = str(getattr(hook, "dialect_name", "") or "")
    except Exception:  # common-sql derives it from the connection's URI: an unreadable one says nothing
        name = ""
    if name.lower() in ("", "default"):
        name = str(getattr(hook, "conn_type", "") or "")
    return name.lower()


def writer_for(
    hook: Any,
    spec: TableSpec,
    table: TableName,
    *,
    children: bool = False,
    store_raw: bool = True,
    raw_json_type: str = DEFAULT_RAW_JSON_TYPE,
) -> SqlWriter:
    """The fastest writer for a ``DbApiHook``, by its SQL dialect (:func:`dialect_of`): DuckDB and
    PostgreSQL bulk paths, else the portable one with the hook's placeholder (``children`` and
    ``store_raw``: see :class:`SqlWriter`; ``raw_json_type``: see :class:`PostgresWriter`, PostgreSQL only)."""
    check_raw_json_type(raw_json_type)
    dialect = dialect_of(hook)
    bulk = _BULK_WRITERS.get(dialect)
    conn = open_waiting_for_lock(hook.get_conn) if dialect == "duckdb" else hook.get_conn()
    if bulk is not None:
        options = {"raw_json_type": raw_json_type} if bulk is PostgresWriter else {}
        return bulk(conn, spec, table, children=children, store_raw=store_raw, **options)
    placeholder = getattr(hook, "placeholder", None) or "%s"
    return SqlWriter(conn, spec, table, placeholder=str(placeholder), children=children, store_raw=store_raw)


#: how long :func:`writer_for` waits for another process's lock on a DuckDB file (seconds)
DUCKDB_LOCK_TIMEOUT = 300.0
_LOCK_HELD = ("Could not set lock on file", "Conflicting lock is held")


def open_waiting_for_lock(
    connect: Callable[[], Any],
    *,
    timeout: float = DUCKDB_LOCK_TIMEOUT,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """``connect()``, tried again every ``interval`` s while DuckDB says another process holds the file's
    lock (DuckDB allows one writing process per file), for at most ``timeout`` s.

    :raises TimeoutError: the lock was still held after ``timeout`` s (names the rule and the way out).
    """
    deadline = clock() + timeout
    while True:
        try:
            return connect()
        except Exception as exc:  # duckdb.IOException; matched by message: no duckdb import here
            if not any(text in str(exc) for text in _LOCK_HELD):
                raise
            if clock() >= deadline:
                raise TimeoutError(
                    f"the DuckDB file is still locked by another process after waiting {timeout:.0f} s: "
                    "DuckDB allows one writing process per file, so run the tasks that open it one at a "
                    "time (a pool with one slot, see docs/transfers.md). DuckDB said: "
                    f"{exc}"
                ) from exc
        sleep(interval)
