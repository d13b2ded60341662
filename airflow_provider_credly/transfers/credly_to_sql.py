"""Credly to SQL: stream badges, badge templates, employees or events into a warehouse table on any common.sql connection.

The machinery (typed schema, dialect bulk writers, checkpoints in the destination, bounded fetch/write
pipeline) lives in :mod:`airflow_provider_credly.warehouse`; these operators only turn an Airflow context
into a request and a destination.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_credly.client.concurrency import AdaptiveLimiter, RequestRate, observe_throttling
from airflow_provider_credly.client.credly import BadgeFormat, CredlyClient
from airflow_provider_credly.client.filters import (
    BADGE_FILTERS,
    BADGE_TEMPLATE_FILTERS,
    BADGE_TEMPLATE_SORTS,
    EMPLOYEE_FILTERS,
    build_filter,
    build_sort,
    parse_filter,
)
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.lineage import DatasetRef, credly_collection
from airflow_provider_credly.links.credly import CredlyOrganizationLink
from airflow_provider_credly.transfers.base import (
    DEFAULT_DESTINATION,
    PageOpener,
    SqlTransferOperator,
    incremental_bound,
    incremental_since,
    saved_request,
    table_counts,
    warehouse_alias,
    warehouse_asset,
)
from airflow_provider_credly.warehouse.checkpoint import Checkpoint
from airflow_provider_credly.warehouse.schema import BADGE_TEMPLATES, BADGES, EMPLOYEES, EVENTS, TableName
from airflow_provider_credly.warehouse.slices import SlicePlan, badge_slice_source
from airflow_provider_credly.warehouse.transfer import TransferResult, TransferRun

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DEFAULT_DESTINATION",
    "CredlyBadgeTemplatesToSqlOperator",
    "CredlyBadgesToSqlOperator",
    "CredlyEmployeesToSqlOperator",
    "CredlyEventsToSqlOperator",
    "PageOpener",
    "SqlTransferOperator",
    "incremental_since",
    "table_counts",
    "warehouse_alias",
    "warehouse_asset",
]

MODES = ("full", "incremental")
#: cursors of a badges load unless ``parallel_cursors`` says otherwise: conservative for a shared API
DEFAULT_PARALLEL_CURSORS = 4
MAX_PARALLEL_CURSORS = 64
WATERMARK_FILTERS = ("updated_at_min", "state_updated_at_min", "created_at_min", "issued_at_min")


class _CredlyToSqlOperator(SqlTransferOperator):
    """The Credly-to-SQL transfers' base: :class:`SqlTransferOperator` with a Credly connection."""

    template_fields: Sequence[str] = ("credly_conn_id", *SqlTransferOperator.template_fields)
    operator_extra_links: tuple[BaseOperatorLink, ...] = (CredlyOrganizationLink(),)

    def __init__(self, *, credly_conn_id: str = CredlyHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credly_conn_id = credly_conn_id

    @cached_property
    def credly_hook(self) -> CredlyHook:
        """The Credly hook (built on first use)."""
        # one pooled connection per concurrent cursor (parallel_cursors may exceed the default pool)
        cursors = getattr(self, "parallel_cursors", 1)
        pool = max(16, int(cursors)) if str(cursors).isdigit() else 16
        return CredlyHook(credly_conn_id=self.credly_conn_id, pool_size=pool)

    #: the organization's collection this transfer reads, for lineage
    collection = "badges"

    def source_dataset(self, request: Mapping[str, Any]) -> DatasetRef | None:
        """``credly://<API host>`` + ``organizations/<org>/<collection>``."""
        base_url = self.credly_hook.client.http.base_url
        return credly_collection(base_url, request.get("organization_id"), self.collection)

    def org_client(self) -> CredlyClient:
        """The Credly client; raises ``ValueError`` (no request made) when no organization is set."""
        hook = self.credly_hook
        _ = hook.organization_id  # the property raises when the connection sets none
        return hook.client

    def execute(self, context: Context) -> dict[str, Any]:
        result = super().execute(context)
        # after the load (nothing is sent before every setting is validated): one warning when the token
        # has fewer than expiry_warn_days left; never fails the load
        self.credly_hook.check_token()
        return result

    def after_error(self) -> None:
        """After a failed try too: one warning when the token is about to expire (never raises)."""
        self.credly_hook.check_token()


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
        watermark: the run's ``data_interval_start`` minus ``overlap``, sent as ``updated_at_min``; on a
        run without a data interval, such as a manual run, the newest ``updated_at`` of the last completed
        load of this task into this table with the same filters minus ``overlap``, see
        :func:`~airflow_provider_credly.transfers.base.incremental_bound`).
    :param overlap: how far before the interval start (or the last load's newest change) an incremental
        load starts (default 1 day: the filter has day granularity).
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
        about ``page_queue_size + 2`` batches of ``batch_rows`` records; a first load, inserted without a
        delete, holds as many records in smaller chunks, except into DuckDB, which inserts whole batches).
    :param batch_rows: records per write batch, i.e. per transaction and checkpoint (default ``None``: 10,000,
        and a first load into DuckDB commits at the end of each row group, 122,880 rows, or every 10 s;
        docs/transfers.md).
    :param checkpoint_key: override the checkpoint key (templated).
    :param store_raw: keep each badge's JSON in the ``raw`` column (default ``True``); ``False`` leaves it
        ``NULL`` and makes DuckDB and PostgreSQL loads cheaper (docs/transfers.md).
    :param raw_json_type: PostgreSQL only: ``json`` (default) or ``jsonb`` for the ``raw`` column of a table
        the transfer creates (``json`` keeps the text as sent and costs the server about a third less CPU per
        load; ``jsonb`` allows containment operators and GIN indexes; docs/transfers.md).
    :param parallel_cursors: high-volume cursors read at once (default 4; templated). Above 1 the request
        is split into created_at slices of about equal badge counts (``metadata.total_count`` probes of the
        regular search, see :func:`~airflow_provider_credly.warehouse.slices.plan_badge_slices`), up to 2
        slices per cursor of at least 4 cursor pages, fetched concurrently (each as soon as the planner has
        made it final) and written by the one writer; each slice has its own checkpoint, so a retry resumes
        every slice and never fetches a finished one again. 429s from any cursor or probe lower the requests
        in flight for all of them. ``1`` is the single cursor of earlier versions. A badge created during
        the load lands in the last slice if its cursor has not ended yet, otherwise in the next incremental
        run (as with one cursor).
    :param max_requests_per_second: optional cap on the cursors' requests per second, in total.
    :param min_slice_badges: no slice is planned smaller than this (default 1,000).
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
        "parallel_cursors",
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
        parallel_cursors: int | str = DEFAULT_PARALLEL_CURSORS,
        max_requests_per_second: float | None = None,
        min_slice_badges: int = 1_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.parallel_cursors = parallel_cursors
        self.max_requests_per_second = max_requests_per_second
        self.min_slice_badges = min_slice_badges
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
        self.cursor_count()  # validated before any request
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
            since, source = incremental_bound(
                context.get("data_interval_start"), self.overlap, self.watermark, self.previous_load(merged)
            )
            if self.checkpoint_read:  # the run's own request (not the validation before any I/O)
                if since is None:
                    self.log.warning("Incremental load reads every badge: %s", source)
                else:
                    self.log.info("Incremental load of badges changed since %s: %s", since, source)
            if since is not None:
                merged[self.watermark_filter] = since
        build_filter(merged, BADGE_FILTERS)  # every key and value checked before the first request
        return merged, since

    def previous_load(self, filters: Mapping[str, Any]) -> Checkpoint | None:
        """The checkpoint saved for this task and table (:attr:`saved_checkpoint`) when it is one of the
        same load: same organization, table, badge format and ``filters`` (the incremental bound aside,
        whichever the filter); ``None`` otherwise."""
        saved = self.saved_checkpoint
        request = saved_request(saved) if saved is not None else None
        if saved is None or request is None:
            return None
        earlier = parse_filter(request["filter"]) if request.get("filter") else {}
        if request.get("watermark") and request.get("watermark_filter"):
            earlier.pop(str(request["watermark_filter"]), None)
        current_text = build_filter(filters, BADGE_FILTERS)
        same = (
            request.get("endpoint") == "high_volume_issued_badge_search"
            and request.get("organization_id") == self.org_client().organization_id
            and request.get("table") == str(TableName.parse(self.table))
            and request.get("badge_format") == self.badge_format
            and earlier == (parse_filter(current_text) if current_text else {})
        )
        return saved if same else None

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

    def cursor_count(self) -> int:
        """``parallel_cursors`` as a checked int (with ``max_requests_per_second`` and ``min_slice_badges``)."""
        try:
            cursors = int(self.parallel_cursors)
        except (TypeError, ValueError):
            raise ValueError(f"parallel_cursors must be an integer, got {self.parallel_cursors!r}") from None
        if not 1 <= cursors <= MAX_PARALLEL_CURSORS:
            raise ValueError(f"parallel_cursors must be within 1..{MAX_PARALLEL_CURSORS}, got {cursors}")
        rate = self.max_requests_per_second
        if rate is not None and not float(rate) > 0:
            raise ValueError(f"max_requests_per_second must be positive, got {rate!r}")
        if int(self.min_slice_badges) < 1:
            raise ValueError(f"min_slice_badges must be at least 1, got {self.min_slice_badges!r}")
        return cursors

    def run_load(
        self, run: TransferRun, open_pages: PageOpener, fingerprint: str, request: Mapping[str, Any]
    ) -> TransferResult:
        """One cursor (``parallel_cursors=1``), or the request's created_at slices over that many cursors
        sharing one adaptive limit (lowered by any 429) and the ``max_requests_per_second`` pace."""
        cursors = self.cursor_count()
        self._parallel: dict[str, Any] = {"parallel_cursors": cursors}
        if cursors == 1:
            return run.run(open_pages, fingerprint)
        client = self.org_client()
        base = parse_filter(request["filter"]) if request.get("filter") else {}
        badge_format: BadgeFormat = "minimal" if request.get("badge_format") == "minimal" else "default"
        limiter = AdaptiveLimiter(cursors)

        def planned(made: SlicePlan) -> None:
            self.log.info(
                "Planned %d slices of %d badges with %d count requests in %d rounds: %s",
                len(made.slices),
                made.total,
                made.probes,
                made.rounds,
                [(s.since, s.until, s.count) for s in made.slices],
            )
            self._parallel["planning_probes"] = made.probes

        source = badge_slice_source(
            client,
            base,
            cursors=cursors,
            limiter=limiter,
            badge_format=badge_format,
            rate=RequestRate(self.max_requests_per_second),
            min_badges=int(self.min_slice_badges),
            on_plan=planned,
        )
        try:
            with observe_throttling(client.http, limiter.on_throttled):
                return run.run_sliced(source, fingerprint)
        finally:
            self._parallel["throttled"] = limiter.throttled

    def execute(self, context: Context) -> dict[str, Any]:
        summary = super().execute(context)
        summary.update(getattr(self, "_parallel", {}))
        return summary


class CredlyEmployeesToSqlOperator(_CredlyToSqlOperator):
    """Load the organization's Workforce employees into a SQL table (full load, upsert by id).

    Same machinery as :class:`CredlyBadgesToSqlOperator` (bulk writers, checkpoint, pipeline) over the
    page-number ``GET /employees`` endpoint.

    :param table: destination table (``table`` or ``schema.table``).
    :param filters: documented employee filters (``name_or_email``, ``employee_state``, ``team``).
    :param prune: delete employees the load did not see (unfiltered loads only).
    """

    spec = EMPLOYEES
    collection = "employees"
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
    collection = "events"

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        client = self.org_client()

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_event_pages(start_url=start_url)

        return open_pages, {"endpoint": "events", "organization_id": client.organization_id, "filter": None}


class CredlyBadgeTemplatesToSqlOperator(_CredlyToSqlOperator):
    """Load the organization's badge templates into a SQL table (full load, upsert by id), so bulk-issue
    DAGs can join their rows on template names (``JOIN credly_badge_templates t ON t.name = r.course``).

    Same machinery as :class:`CredlyBadgesToSqlOperator` (bulk writers, checkpoint, pipeline) over the
    page-number ``GET /organizations/<org>/badge_templates`` endpoint. Columns: ``id``, ``name``,
    ``state``, ``description``, ``vanity_slug``, ``visibility``, ``public``, ``allow_duplicate_badges``,
    ``badges_count``, ``level``, ``time_to_earn``, ``cost``, ``type_category``, ``url``, ``image_url``,
    ``owner_id``, ``created_at``, ``updated_at``, ``state_updated_at`` and ``raw``; with
    ``include_child_tables`` also ``<table>_skills``.

    :param table: destination table (``table`` or ``schema.table``).
    :param filters: badge template filters (``name``, ``state``, ``public``), validated before any request.
    :param sort: ``name``, ``created_at`` or ``updated_at`` (``-`` for descending).
    :param prune: delete templates the load did not see (unfiltered loads only).
    """

    spec = BADGE_TEMPLATES
    collection = "badge_templates"
    template_fields: Sequence[str] = (*_CredlyToSqlOperator.template_fields, "filters", "sort")

    def __init__(
        self,
        *,
        filters: Mapping[str, Any] | str | None = None,
        sort: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.sort = sort

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        filter_text = build_filter(self.filters, BADGE_TEMPLATE_FILTERS)
        sort_text = build_sort(self.sort, BADGE_TEMPLATE_SORTS)
        client = self.org_client()

        def open_pages(start_url: str | None) -> Iterator[Page]:
            return client.iter_badge_template_pages(filter_text, sort_text, start_url=start_url)

        return open_pages, {
            "endpoint": "badge_templates",
            "organization_id": client.organization_id,
            "filter": filter_text,
            "sort": sort_text,
        }
