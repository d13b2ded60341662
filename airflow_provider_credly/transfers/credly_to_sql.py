"""Credly to SQL: stream badges, employees or events into a warehouse table on any common.sql connection.

The machinery (typed schema, dialect bulk writers, checkpoints in the destination, bounded fetch/write
pipeline) lives in :mod:`airflow_provider_credly.warehouse`; these operators only turn an Airflow context
into a request and a destination.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import Asset, BaseHook, BaseOperator

from airflow_provider_credly.client.credly import BadgeFormat
from airflow_provider_credly.client.filters import (
    BADGE_FILTERS,
    EMPLOYEE_FILTERS,
    build_filter,
    format_date,
    parse_filter,
)
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.warehouse.checkpoint import Checkpoint, CheckpointStore
from airflow_provider_credly.warehouse.schema import BADGES, EMPLOYEES, EVENTS, TableName, TableSpec
from airflow_provider_credly.warehouse.transfer import run_transfer
from airflow_provider_credly.warehouse.writers import writer_for

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CredlyBadgesToSqlOperator",
    "CredlyEmployeesToSqlOperator",
    "CredlyEventsToSqlOperator",
    "incremental_since",
    "table_counts",
    "warehouse_asset",
]

DEFAULT_DESTINATION = "duckdb_default"
MODES = ("full", "incremental")
WATERMARK_FILTERS = ("updated_at_min", "state_updated_at_min", "created_at_min", "issued_at_min")

PageOpener = Callable[[str | None], Iterator[Page]]


def warehouse_asset(destination_conn_id: str, table: str) -> Asset:
    """The Asset a transfer declares for its table: ``credly-warehouse://<conn id>/<table>``.

    Schedule a downstream DAG on it with ``schedule=[warehouse_asset("duckdb_default", "credly_badges")]``.
    """
    return Asset(uri=f"credly-warehouse://{destination_conn_id}/{table}", name=f"credly_warehouse_{table}")


def incremental_since(
    data_interval_start: datetime | None, overlap: timedelta, watermark: Any = None
) -> str | None:
    """The ``YYYY-MM-DD`` lower bound of an incremental load.

    Credly's date filters have day granularity, so the bound is the UTC date of
    ``data_interval_start - overlap`` (an explicit ``watermark`` wins). ``None`` when there is no interval.
    """
    if watermark not in (None, ""):
        return format_date(watermark, key="watermark")
    if data_interval_start is None:
        return None
    return format_date(data_interval_start - overlap, key="data_interval_start")


def table_counts(destination_conn_id: str, table: str, group_by: str | None = "state") -> dict[str, Any]:
    """Row count of a transfer's table (and per ``group_by`` value), for reports at the end of a DAG.

    :return: ``{"table": ..., "rows": n, "by_<group_by>": {value: n}}``.
    """
    name = TableName.parse(table)
    hook = BaseHook.get_connection(destination_conn_id).get_hook()  # type: ignore[no-untyped-call]
    total = hook.get_first(f"SELECT COUNT(*) FROM {name}")[0]
    out: dict[str, Any] = {"table": str(name), "rows": int(total)}
    if group_by:
        TableName.parse(group_by)  # a plain column name
        rows = hook.get_records(f"SELECT {group_by}, COUNT(*) FROM {name} GROUP BY 1 ORDER BY 2 DESC")
        out[f"by_{group_by}"] = {str(k): int(v) for k, v in rows}
    return out


class _CredlyToSqlOperator(BaseOperator):
    """Shared machinery of the Credly-to-SQL transfers (see :class:`CredlyBadgesToSqlOperator`)."""

    spec: TableSpec = BADGES
    endpoint: str = ""
    template_fields: Sequence[str] = ("credly_conn_id", "destination_conn_id", "table", "checkpoint_key")
    ui_color = "#f0e6ff"
    #: the source cursor yields each key at most once (see ``run_transfer(unique_keys=...)``)
    unique_keys: bool = False

    def __init__(
        self,
        *,
        table: str,
        credly_conn_id: str = CredlyHook.default_conn_name,
        destination_conn_id: str = DEFAULT_DESTINATION,
        prune: bool = False,
        include_child_tables: bool = False,
        page_queue_size: int = 2,
        batch_rows: int = 10_000,
        checkpoint_key: str | None = None,
        outlets: Any = None,
        **kwargs: Any,
    ) -> None:
        if outlets is None:  # a templated name cannot make a static Asset: pass outlets yourself then
            templated = "{{" in f"{destination_conn_id}{table}"
            outlets = [] if templated else [warehouse_asset(destination_conn_id, table)]
        super().__init__(outlets=outlets, **kwargs)
        self.table = table
        self.credly_conn_id = credly_conn_id
        self.destination_conn_id = destination_conn_id
        self.prune = prune
        self.include_child_tables = include_child_tables
        self.page_queue_size = page_queue_size
        self.batch_rows = batch_rows
        self.checkpoint_key = checkpoint_key
        self.bootstrap_run = False  # set in execute(): this run is a bootstrap full load

    @cached_property
    def credly_hook(self) -> CredlyHook:
        """The Credly hook (built on first use)."""
        return CredlyHook(credly_conn_id=self.credly_conn_id)

    def get_db_hook(self) -> DbApiHook:
        """The destination's ``DbApiHook`` (DuckDB, PostgreSQL, SQLite...)."""
        hook = BaseHook.get_connection(self.destination_conn_id).get_hook()  # type: ignore[no-untyped-call]
        if not isinstance(hook, DbApiHook):
            raise ValueError(
                f"destination_conn_id {self.destination_conn_id!r} gives a {type(hook).__name__}, "
                "which is not a DbApiHook (common.sql) connection"
            )
        return hook

    # -- the request -------------------------------------------------------------------------------

    def validate(self) -> TableName:
        """Check the settings before any HTTP call; returns the parsed table name."""
        table = TableName.parse(self.table)
        if int(self.page_queue_size) < 1:
            raise ValueError(f"page_queue_size must be at least 1, got {self.page_queue_size!r}")
        if int(self.batch_rows) < 1:
            raise ValueError(f"batch_rows must be at least 1, got {self.batch_rows!r}")
        return table

    def build_request(self, context: Context) -> tuple[PageOpener, dict[str, Any]]:
        """The page opener (cursor URL -> pages) and the request's description (fingerprint, XCom).

        Validates the settings (no HTTP request is made here).
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

    def execute(self, context: Context) -> dict[str, Any]:
        table = self.validate()
        self.build_request(context)  # validates every setting before any I/O
        key = self.transfer_key(context, table)
        writer = writer_for(self.get_db_hook(), self.spec, table, children=self.include_child_tables)
        try:
            store = CheckpointStore(writer)
            writer.ensure_tables([store.ddl()])
            self.bootstrap_run = self.wants_bootstrap(store.load(key))
            open_pages, request = self.build_request(context)
            if self.prune and request.get("mode", "full") != "full":
                raise ValueError("prune=True needs mode='full'")
            if self.prune and request.get("filter"):
                raise ValueError(
                    "prune=True deletes every row the load did not see, so it needs an unfiltered full load; "
                    f"this load has filter {request['filter']!r}"
                )
            fingerprint = json.dumps({**request, "table": str(table)}, sort_keys=True, default=str)
            self.log.info(
                "Loading %s into %s (%s) on %r: %s",
                self.spec.kind,
                table,
                type(writer).__name__,
                self.destination_conn_id,
                {k: v for k, v in request.items() if v is not None},
            )
            result = run_transfer(
                open_pages=open_pages,
                writer=writer,
                key=key,
                fingerprint=fingerprint,
                prune=self.prune,
                queue_size=int(self.page_queue_size),
                batch_rows=int(self.batch_rows),
                checkpoints=store,
                after_commit=self.after_batch_committed,
                logger=self.log,
                unique_keys=self.unique_keys,
            )
        finally:
            writer.close()
        summary = {**result.as_dict(), **{k: v for k, v in request.items() if k != "endpoint"}}
        summary["destination_conn_id"] = self.destination_conn_id
        return summary


class CredlyBadgesToSqlOperator(_CredlyToSqlOperator):
    """Load issued badges from Credly's high-volume cursor into a SQL table, idempotently and resumably.

    One row per badge (primary key ``id``; typed columns plus the raw JSON), upserted by id, so reruns and
    overlapping intervals never duplicate. Pages are fetched in a background thread while the previous batch
    is written with the destination's bulk path (DuckDB ``from_json`` merge, PostgreSQL ``COPY`` + merge,
    ``executemany`` elsewhere). Each batch commits together with a checkpoint stored in the destination, so
    a retry resumes after the last committed page. Returns a JSON summary (rows, pages, watermark...).

    :param table: destination table, ``table`` or ``schema.table``; created if missing.
    :param credly_conn_id: the Credly connection.
    :param destination_conn_id: any common.sql connection (default ``duckdb_default``: in-memory DuckDB
        unless that connection is defined, so set it to a file-backed DuckDB or a warehouse connection).
    :param mode: ``full`` (every badge matching ``filters``) or ``incremental`` (badges changed since the
        watermark: the run's ``data_interval_start`` minus ``overlap``, sent as ``updated_at_min``).
    :param overlap: how far before the interval start an incremental load starts (default 1 day: the
        filter has day granularity).
    :param watermark: explicit incremental lower bound (date, datetime or ``YYYY-MM-DD``; templated).
    :param watermark_filter: the date filter used for incremental loads (default ``updated_at_min``).
    :param since: ``created_at_min`` (templated; partitioned backfills).
    :param until: ``created_at_max`` (templated; inclusive day).
    :param filters: more documented badge filters (``{"state": "accepted"}``), validated before any request.
    :param badge_format: ``default`` or ``minimal`` (fastest; fewer columns filled).
    :param bootstrap_full: in incremental mode, load everything (no watermark) the first time this task
        loads into the table (no checkpoint yet), and continue such a first load until it completes.
    :param prune: after an unfiltered full load, delete rows it did not see (deleted or replaced badges).
    :param include_child_tables: also maintain ``<table>_skills`` and ``<table>_evidence``.
    :param page_queue_size: complete write batches the fetch thread may hold ahead of the writer (memory bound:
        about ``page_queue_size + 2`` batches of ``batch_rows`` records; of 2,500-record chunks when the table
        holds no row of another load, e.g. a first load, whose batches are then inserted without a delete).
    :param batch_rows: records per write batch, i.e. per transaction and checkpoint (default 10,000).
    :param checkpoint_key: override the checkpoint key (templated).
    """

    spec = BADGES
    template_fields: Sequence[str] = (
        *_CredlyToSqlOperator.template_fields,
        "filters",
        "watermark",
        "since",
        "until",
        "mode",
        "badge_format",
    )
    unique_keys = True  # the high-volume cursor seeks by (created_at, id): each badge once per load

    def __init__(
        self,
        *,
        mode: str = "full",
        overlap: timedelta = timedelta(days=1),
        watermark: Any = None,
        watermark_filter: str = "updated_at_min",
        since: Any = None,
        until: Any = None,
        filters: Mapping[str, Any] | str | None = None,
        badge_format: str = "default",
        bootstrap_full: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bootstrap_full = bootstrap_full
        self.mode = mode
        self.overlap = overlap
        self.watermark = watermark
        self.watermark_filter = watermark_filter
        self.since = since
        self.until = until
        self.filters = filters
        self.badge_format = badge_format

    def wants_bootstrap(self, saved: Checkpoint | None) -> bool:
        """A first incremental load (no checkpoint), or an unfinished bootstrap, loads everything."""
        if self.mode != "incremental" or not self.bootstrap_full:
            return False
        return saved is None or (saved.status != "done" and '"bootstrap": true' in saved.fingerprint)

    def build_filters(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[dict[str, Any], str | None]:
        """The badge filters of this run and the incremental lower bound (``None`` in full mode)."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.badge_format not in ("default", "minimal"):
            raise ValueError(f"badge_format must be 'default' or 'minimal', got {self.badge_format!r}")
        if self.watermark_filter not in WATERMARK_FILTERS:
            raise ValueError(f"watermark_filter must be one of {', '.join(WATERMARK_FILTERS)}")
        base = self.filters
        if isinstance(base, str):
            base = parse_filter(base)
        merged: dict[str, Any] = dict(base or {})
        for key, value in (("created_at_min", self.since), ("created_at_max", self.until)):
            if value not in (None, ""):
                if key in merged:
                    raise ValueError(f"filter {key!r} is set both in filters and by since/until")
                merged[key] = value
        since: str | None = None
        if self.mode == "incremental" and bootstrap:
            self.log.info("First incremental load into this table: loading every badge (bootstrap_full)")
        elif self.mode == "incremental":
            if self.watermark_filter in merged:
                raise ValueError(f"incremental mode sets {self.watermark_filter!r}: remove it from filters")
            since = incremental_since(context.get("data_interval_start"), self.overlap, self.watermark)
            if since is None:
                self.log.warning("No data interval and no watermark: the incremental load reads every badge")
            else:
                merged[self.watermark_filter] = since
        build_filter(merged, BADGE_FILTERS)  # every key and value checked before the first request
        return merged, since

    def build_request(self, context: Context) -> tuple[PageOpener, dict[str, Any]]:
        bootstrap = self.bootstrap_run
        filters, since = self.build_filters(context, bootstrap=bootstrap)
        filter_text = build_filter(filters, BADGE_FILTERS)
        client = self.credly_hook.client
        badge_format: BadgeFormat = "minimal" if self.badge_format == "minimal" else "default"

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_high_volume_badge_pages(
                filter_text, badge_format=badge_format, start_url=start_url
            )

        request = {
            "endpoint": "high_volume_issued_badge_search",
            "organization_id": client.organization_id,
            "mode": self.mode,
            "filter": filter_text,
            "badge_format": badge_format,
            "watermark": since,
            "watermark_filter": self.watermark_filter if since else None,
            "bootstrap": bootstrap or None,
        }
        return open_pages, request


class CredlyEmployeesToSqlOperator(_CredlyToSqlOperator):
    """Load the organization's Workforce employees into a SQL table (full load, upsert by id).

    Same machinery as :class:`CredlyBadgesToSqlOperator` (bulk writers, checkpoint, pipeline) over the
    page-number ``GET /employees`` endpoint.

    :param table: destination table (``table`` or ``schema.table``).
    :param filters: documented employee filters (``name_or_email``, ``employee_state``, ``team``).
    :param prune: delete employees the load did not see (unfiltered loads only).
    """

    spec = EMPLOYEES
    template_fields: Sequence[str] = (*_CredlyToSqlOperator.template_fields, "filters")

    def __init__(self, *, filters: Mapping[str, Any] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters

    def build_request(self, context: Context) -> tuple[PageOpener, dict[str, Any]]:
        filter_text = build_filter(self.filters, EMPLOYEE_FILTERS)
        client = self.credly_hook.client

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_employee_pages(filter_text, start_url=start_url)

        return open_pages, {
            "endpoint": "employees",
            "organization_id": client.organization_id,
            "filter": filter_text,
        }


class CredlyEventsToSqlOperator(_CredlyToSqlOperator):
    """Load the organization's events into a SQL table (full load, upsert by id).

    :param table: destination table (``table`` or ``schema.table``).
    """

    spec = EVENTS

    def build_request(self, context: Context) -> tuple[PageOpener, dict[str, Any]]:
        client = self.credly_hook.client

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_event_pages(start_url=start_url)

        return open_pages, {"endpoint": "events", "organization_id": client.organization_id, "filter": None}
