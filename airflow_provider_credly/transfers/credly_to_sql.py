"""Credly to SQL: stream badges, employees or events into a warehouse table on any common.sql connection.

The machinery (typed schema, dialect bulk writers, checkpoints in the destination, bounded fetch/write
pipeline) lives in :mod:`airflow_provider_credly.warehouse`; these operators only turn an Airflow context
into a request and a destination.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_credly.client.credly import BadgeFormat, CredlyClient
from airflow_provider_credly.client.filters import BADGE_FILTERS, EMPLOYEE_FILTERS, build_filter, parse_filter
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.transfers.base import (
    DEFAULT_DESTINATION,
    PageOpener,
    SqlTransferOperator,
    incremental_since,
    table_counts,
    warehouse_asset,
)
from airflow_provider_credly.warehouse.checkpoint import Checkpoint
from airflow_provider_credly.warehouse.schema import BADGES, EMPLOYEES, EVENTS

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DEFAULT_DESTINATION",
    "CredlyBadgesToSqlOperator",
    "CredlyEmployeesToSqlOperator",
    "CredlyEventsToSqlOperator",
    "PageOpener",
    "SqlTransferOperator",
    "incremental_since",
    "table_counts",
    "warehouse_asset",
]

MODES = ("full", "incremental")
WATERMARK_FILTERS = ("updated_at_min", "state_updated_at_min", "created_at_min", "issued_at_min")


class _CredlyToSqlOperator(SqlTransferOperator):
    """The Credly-to-SQL transfers' base: :class:`SqlTransferOperator` with a Credly connection."""

    template_fields: Sequence[str] = ("credly_conn_id", *SqlTransferOperator.template_fields)

    def __init__(self, *, credly_conn_id: str = CredlyHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credly_conn_id = credly_conn_id

    @cached_property
    def credly_hook(self) -> CredlyHook:
        """The Credly hook (built on first use)."""
        return CredlyHook(credly_conn_id=self.credly_conn_id)

    def org_client(self) -> CredlyClient:
        """The Credly client; raises ``ValueError`` (no request made) when no organization is set."""
        hook = self.credly_hook
        _ = hook.organization_id  # the property raises when the connection sets none
        return hook.client


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

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        filters, since = self.build_filters(context, bootstrap=bootstrap)
        filter_text = build_filter(filters, BADGE_FILTERS)
        client = self.org_client()
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

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        filter_text = build_filter(self.filters, EMPLOYEE_FILTERS)
        client = self.org_client()

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

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        client = self.org_client()

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_event_pages(start_url=start_url)

        return open_pages, {"endpoint": "events", "organization_id": client.organization_id, "filter": None}
