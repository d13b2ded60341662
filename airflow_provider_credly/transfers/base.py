"""The base of every API-to-SQL transfer operator: destination, checkpoint key, validation and the run.

Subclasses set :attr:`SqlTransferOperator.spec` (the table definition) and implement
:meth:`SqlTransferOperator.build_request` (the page source); the machinery (typed schema, dialect bulk
writers, checkpoints in the destination, bounded fetch/write pipeline) lives in
:mod:`airflow_provider_credly.warehouse`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import Asset, AssetAlias, BaseHook, BaseOperator

from airflow_provider_credly.client.times import format_date, parse_timestamp
from airflow_provider_credly.hooks.sql import get_db_hook
from airflow_provider_credly.lineage import DatasetRef, TableLocation, operator_lineage, table_location
from airflow_provider_credly.operators.failures import FailFastMixin
from airflow_provider_credly.warehouse.checkpoint import DONE, Checkpoint
from airflow_provider_credly.warehouse.schema import BADGES, TableName, TableSpec
from airflow_provider_credly.warehouse.transfer import PageOpener, TransferResult, TransferRun
from airflow_provider_credly.warehouse.writers import DEFAULT_RAW_JSON_TYPE, check_raw_json_type, writer_for

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DEFAULT_DESTINATION",
    "PageOpener",
    "SqlTransferOperator",
    "incremental_bound",
    "incremental_since",
    "saved_request",
    "table_counts",
    "warehouse_alias",
    "warehouse_asset",
]

DEFAULT_DESTINATION = "duckdb_default"


def warehouse_alias(destination_conn_id: str, table: str) -> AssetAlias:
    """The Asset alias a transfer declares as its outlet: ``credly-warehouse:<conn id>/<table>``.

    The table's Asset is named as the destination's provider names it (``postgres://host:port/db/schema/
    table``, see :mod:`airflow_provider_credly.lineage`), which takes the connection to know; the
    connection is read when the task runs, not when the DAG is parsed, so the transfer declares this alias
    and attaches each run's event to the table's Asset. Schedule a downstream DAG on either:
    ``schedule=[warehouse_alias("duckdb_default", "credly_badges")]`` or
    ``schedule=[warehouse_asset("duckdb_default", "credly_badges")]``.
    """
    return AssetAlias(name=f"credly-warehouse:{destination_conn_id}/{table}")


def warehouse_location(destination_conn_id: str, table: str) -> TableLocation:
    """Where ``table`` lives on ``destination_conn_id``, named as its provider names it (reads the
    connection)."""
    conn = BaseHook.get_connection(destination_conn_id)
    return table_location(conn, get_db_hook(destination_conn_id), str(TableName.parse(table)))


def warehouse_asset(destination_conn_id: str, table: str) -> Asset:
    """The Asset of a transfer's table, e.g. ``postgres://db.example.com:5432/analytics/public/credly_badges``
    or ``duckdb:/data/warehouse.duckdb/main/credly_badges`` (URI and name alike; unique per destination).

    Reads the connection: use it where connections can be read, or write the URI yourself.
    """
    return warehouse_location(destination_conn_id, table).asset()


def saved_request(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The request (with its ``table``) that the load of ``checkpoint`` was made with, read back from its
    fingerprint (a sliced load's plan after it is ignored); ``None`` when it cannot be read."""
    try:
        request, _ = json.JSONDecoder().raw_decode(checkpoint.fingerprint)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def incremental_bound(
    data_interval_start: datetime | None,
    overlap: timedelta,
    watermark: Any = None,
    previous: Checkpoint | None = None,
) -> tuple[str | None, str]:
    """The ``YYYY-MM-DD`` lower bound of an incremental load and where it came from (for the log).

    Credly's date filters have day granularity. In order: an explicit ``watermark``; the UTC date of
    ``data_interval_start - overlap``; on a run without a data interval (a manual run in Airflow 3), the
    checkpoint ``previous`` of the same load in the destination: after a completed load the date of its
    newest ``updated_at`` minus ``overlap`` (the same safety margin), after one that wrote nothing or did
    not finish the bound that load used (so an unfinished load is continued, not started over). ``None``
    (every record) when none of them exists.

    :param previous: the checkpoint saved for this task and table when it is one of the same request
        (filters, format; the bound aside), else ``None``.
    """
    if watermark not in (None, ""):
        return format_date(watermark, key="watermark"), "the watermark argument"
    if data_interval_start is not None:
        return format_date(data_interval_start - overlap, key="data_interval_start"), (
            f"data_interval_start {data_interval_start.isoformat()} - overlap {overlap}"
        )
    if previous is None:
        return None, "no data interval, no watermark and no checkpoint of the same load"
    try:
        newest = parse_timestamp(previous.max_updated_at) if previous.status == DONE else None
    except ValueError:  # an unreadable value (written by hand?): fall back to the load's own bound
        newest = None
    if newest is not None:
        return format_date(newest - overlap, key="max_updated_at"), (
            f"no data interval: newest updated_at {previous.max_updated_at} of the last completed load "
            f"{previous.load_id} - overlap {overlap}"
        )
    earlier = (saved_request(previous) or {}).get("watermark")
    state = "completed load, which wrote nothing" if previous.status == DONE else "unfinished load"
    if earlier:
        return format_date(earlier, key="watermark"), f"no data interval: the bound of the last {state}"
    return None, f"no data interval, and the last {state} read every record"


def incremental_since(
    data_interval_start: datetime | None,
    overlap: timedelta,
    watermark: Any = None,
    previous: Checkpoint | None = None,
) -> str | None:
    """The ``YYYY-MM-DD`` lower bound of an incremental load (see :func:`incremental_bound`)."""
    return incremental_bound(data_interval_start, overlap, watermark, previous)[0]


def table_counts(destination_conn_id: str, table: str, group_by: str | None = "state") -> dict[str, Any]:
    """Row count of a transfer's table (and per ``group_by`` value), for reports at the end of a DAG.

    :return: ``{"table": ..., "rows": n, "by_<group_by>": {value: n}}``.
    """
    name = TableName.parse(table)
    hook = get_db_hook(destination_conn_id)
    total = hook.get_first(f"SELECT COUNT(*) FROM {name}")[0]
    out: dict[str, Any] = {"table": str(name), "rows": int(total)}
    if group_by:
        TableName.parse(group_by)  # a plain column name
        rows = hook.get_records(f"SELECT {group_by}, COUNT(*) FROM {name} GROUP BY 1 ORDER BY 2 DESC")
        out[f"by_{group_by}"] = {str(k): int(v) for k, v in rows}
    return out


class SqlTransferOperator(FailFastMixin, BaseOperator):
    """Base of the API-to-SQL transfers: streams a page source into a table on any common.sql connection.

    A subclass sets :attr:`spec` (the table's columns) and implements :meth:`build_request` (validated
    settings -> page opener + request description). :meth:`execute` does the rest: creates the tables,
    resumes an unfinished load with the same request, writes each batch with its checkpoint in one
    transaction, optionally prunes, and returns a JSON summary (see
    :class:`~airflow_provider_credly.transfers.credly_to_sql.CredlyBadgesToSqlOperator` for the parameters).

    :param table: destination table, ``table`` or ``schema.table``; created if missing.
    :param destination_conn_id: any common.sql connection (default ``duckdb_default``).
    :param prune: after an unfiltered full load, delete rows it did not see.
    :param include_child_tables: also maintain the spec's child tables.
    :param page_queue_size: complete write batches fetched ahead of the writer.
    :param batch_rows: records per write batch, i.e. per transaction and checkpoint (``None``, the default:
        10,000, and a first load into DuckDB commits once per row group instead, see docs/transfers.md).
    :param checkpoint_key: override the checkpoint key (templated).
    :param store_raw: keep each record's JSON in the ``raw`` column (default); ``False`` leaves it ``NULL``
        and makes the DuckDB and PostgreSQL loads cheaper (see docs/transfers.md).
    :param raw_json_type: PostgreSQL only: the ``raw`` column's type when the transfer creates the table (templated),
        ``json`` (default: the record's text as sent, only validated at load, each query parsing it again) or
        ``jsonb`` (parsed at load: containment operators and GIN indexes, about 1.5x the server's load CPU;
        docs/transfers.md). An existing table keeps its type.
    """

    spec: TableSpec = BADGES
    template_fields: Sequence[str] = ("destination_conn_id", "table", "checkpoint_key", "raw_json_type")
    ui_color = "#f0e6ff"
    template_fields_renderers = {"filters": "json"}
    #: the source cursor yields each key at most once (see ``run_transfer(unique_keys=...)``)
    unique_keys: bool = False
    #: the checkpoint saved under this task's key, read by :meth:`execute` before it builds the request it
    #: runs (``None``: none is saved, or it is not read yet, see :attr:`checkpoint_read`)
    saved_checkpoint: Checkpoint | None = None
    #: whether :attr:`saved_checkpoint` is read (``False`` while :meth:`execute` validates the settings)
    checkpoint_read: bool = False

    def __init__(
        self,
        *,
        table: str,
        destination_conn_id: str = DEFAULT_DESTINATION,
        prune: bool = False,
        include_child_tables: bool = False,
        page_queue_size: int = 2,
        batch_rows: int | None = None,
        checkpoint_key: str | None = None,
        store_raw: bool = True,
        raw_json_type: str = DEFAULT_RAW_JSON_TYPE,
        outlets: Any = None,
        **kwargs: Any,
    ) -> None:
        if outlets is None:  # a templated name cannot make a static Asset: pass outlets yourself then
            templated = "{{" in f"{destination_conn_id}{table}"
            outlets = [] if templated else [warehouse_alias(destination_conn_id, table)]
        super().__init__(outlets=outlets, **kwargs)
        self.table = table
        self.destination_conn_id = destination_conn_id
        self.prune = prune
        self.include_child_tables = include_child_tables
        self.page_queue_size = page_queue_size
        self.batch_rows = batch_rows
        self.checkpoint_key = checkpoint_key
        self.store_raw = store_raw
        self.raw_json_type = raw_json_type

    def get_db_hook(self) -> DbApiHook:
        """The destination's ``DbApiHook`` (DuckDB, PostgreSQL, SQLite...)."""
        return get_db_hook(self.destination_conn_id)

    # -- the request -------------------------------------------------------------------------------

    def validate(self) -> TableName:
        """Check the settings before any HTTP call; returns the parsed table name."""
        table = TableName.parse(self.table)
        if int(self.page_queue_size) < 1:
            raise ValueError(f"page_queue_size must be at least 1, got {self.page_queue_size!r}")
        if self.batch_rows is not None and int(self.batch_rows) < 1:
            raise ValueError(f"batch_rows must be at least 1, got {self.batch_rows!r}")
        check_raw_json_type(self.raw_json_type)
        return table

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        """The page opener (cursor URL -> pages) and the request's description (fingerprint, XCom).

        Validates the settings (no HTTP request is made here).

        :param bootstrap: this run is a full "bootstrap" load instead of the configured one (see
            :meth:`wants_bootstrap`).
        """
        raise NotImplementedError

    def transfer_key(self, context: Context, table: TableName) -> str:
        """Checkpoint key: ``checkpoint_key`` or ``<dag>.<task>[<map index>]:<table>``.

        The run id is deliberately not part of it: a retry, a cleared task or the next run with the same
        request (same fingerprint) continues an unfinished load.
        """
        if self.checkpoint_key:
            return str(self.checkpoint_key)
        ti = context.get("ti") or context.get("task_instance")
        map_index = getattr(ti, "map_index", -1)
        suffix = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{suffix}:{table}"

    def after_batch_committed(self, checkpoint: Checkpoint) -> None:
        """Called after every committed batch (override to add monitoring); does nothing by default."""

    # -- execution -----------------------------------------------------------------------------------

    def wants_bootstrap(self, saved: Checkpoint | None) -> bool:
        """Whether this run must be a full "bootstrap" load instead of the configured one (see the badges
        transfer's ``bootstrap_full``); ``False`` here."""
        return False

    def check_request(self, request: Mapping[str, Any]) -> None:
        """Settings that need the built request (``prune`` with it); raises ``ValueError``."""
        if self.prune and request.get("mode", "full") != "full":
            raise ValueError("prune=True needs mode='full'")
        if self.prune and request.get("filter"):
            raise ValueError(
                "prune=True deletes every row the load did not see, so it needs an unfiltered full load; "
                f"this load has filter {request['filter']!r}"
            )

    def run_load(
        self, run: TransferRun, open_pages: PageOpener, fingerprint: str, request: Mapping[str, Any]
    ) -> TransferResult:
        """Run the prepared load: one cursor here (:meth:`TransferRun.run`); the badges transfer reads
        several slices at once instead (``parallel_cursors``)."""
        return run.run(open_pages, fingerprint)

    def execute(self, context: Context) -> dict[str, Any]:
        self.saved_checkpoint, self.checkpoint_read = None, False  # the operator may run again (retries)
        table = self.validate()
        # every setting is validated before any I/O: a load that cannot run creates no table
        self.check_request(self.build_request(context)[1])
        key = self.transfer_key(context, table)
        hook = self.get_db_hook()
        writer = writer_for(
            hook,
            self.spec,
            table,
            children=self.include_child_tables,
            store_raw=bool(self.store_raw),
            raw_json_type=self.raw_json_type,
        )
        try:
            run = TransferRun(
                writer=writer,
                key=key,
                prune=self.prune,
                queue_size=int(self.page_queue_size),
                batch_rows=None if self.batch_rows is None else int(self.batch_rows),
                after_commit=self.after_batch_committed,
                logger=self.log,
                unique_keys=self.unique_keys,
            )
            # the saved checkpoint decides the request: run.saved() creates the tables (once) and reads it
            self.saved_checkpoint, self.checkpoint_read = run.saved(), True
            bootstrap = self.wants_bootstrap(self.saved_checkpoint)
            open_pages, request = self.build_request(context, bootstrap=bootstrap)
            self.check_request(request)  # the bootstrap request too
            fingerprint = json.dumps({**request, "table": str(table)}, sort_keys=True, default=str)
            self.log.info(
                "Loading %s into %s (%s) on %r: %s",
                self.spec.kind,
                table,
                type(writer).__name__,
                self.destination_conn_id,
                {k: v for k, v in request.items() if v is not None},
            )
            result = self.run_load(run, open_pages, fingerprint, request)
        finally:
            writer.close()
        summary = {**result.as_dict(), **{k: v for k, v in request.items() if k != "endpoint"}}
        summary["destination_conn_id"] = self.destination_conn_id
        self.record_lineage(context, hook, table, request, summary)
        return summary

    # -- lineage -------------------------------------------------------------------------------------

    def source_dataset(self, request: Mapping[str, Any]) -> DatasetRef | None:
        """The API collection the load read, as a dataset (see :func:`~airflow_provider_credly.lineage.
        api_dataset`); subclasses name it, ``None`` here."""
        return None

    def record_lineage(
        self,
        context: Context,
        hook: DbApiHook,
        table: TableName,
        request: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> None:
        """After a load: keep its source and tables for :meth:`get_openlineage_facets_on_complete` and
        attach this run's event to the table's Asset through the outlet alias. Naming the destination
        never fails a load that succeeded (it is logged instead)."""
        try:
            conn = BaseHook.get_connection(self.destination_conn_id)
        except Exception:  # duckdb_default may be undefined: the DuckDB hook then opens :memory:
            conn = None
        try:
            location = table_location(conn, hook, str(table))
        except Exception as exc:
            self.log.warning("Could not name the destination table for lineage: %s", exc)
            return
        table_set = location.dataset(self.spec, rows=int(summary.get("rows") or 0))
        if not getattr(self, "store_raw", True):  # the table has no raw column then
            table_set = replace(table_set, fields=tuple(f for f in table_set.fields if f[0] != "raw"))
        outputs = [table_set]
        if self.include_child_tables:
            outputs += [location.child(f"{table.name}_{c.suffix}").dataset() for c in self.spec.children]
        source = self.source_dataset(request)
        self._lineage = ([source] if source is not None else [], outputs)
        alias = warehouse_alias(self.destination_conn_id, self.table)
        if alias in (self.outlets or []):
            events = context.get("outlet_events")
            if events is not None:
                events[alias].add(location.asset(), extra={"rows": summary.get("rows")})
                self.log.info("Asset event for %s", location.uri)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the API collection read (input) and the destination table written (output, with
        its columns and the rows written), named as the destination's provider names it."""
        inputs, outputs = getattr(self, "_lineage", ([], []))
        return operator_lineage(inputs, outputs)
