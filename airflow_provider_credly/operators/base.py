"""Shared plumbing of the Credly and Canvas Credentials operators: one operator base for both backends
(the connection and lazily built hook, typed template fields converted back once rendered), one bulk issue
mixin, the run date, the try number, list arguments, input rows from a list or a query, and the results of
single and bulk issuing with one "threshold, report, raise" step.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook
from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.issuing.bulk import BulkIssueReport, IfExists, IssueResult
from airflow_provider_credly.lineage import DatasetRef, canvas_collection, credly_collection, operator_lineage
from airflow_provider_credly.links.credly import CredlyOrganizationLink
from airflow_provider_credly.operators.failures import (
    FailFastMixin,
    all_permanent,
    as_permanent,
    is_permanent,
)

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

__all__ = [
    "BULK_TEMPLATE_FIELDS",
    "ApiOperator",
    "BulkIssueMixin",
    "CanvasCredentialsBaseOperator",
    "CredlyBaseOperator",
    "as_list",
    "first_try_bound",
    "issue_xcom",
    "load_rows",
    "report_or_raise",
    "run_date",
    "try_number",
]


def run_date(context: Context | Mapping[str, Any]) -> datetime:
    """The run's logical date; ``data_interval_end`` or now when it has none (manual runs in Airflow 3)."""
    for key in ("logical_date", "data_interval_end"):
        value = context.get(key)
        if value is not None:
            return cast(datetime, value)
    return datetime.now(UTC)


def try_number(context: Context | Mapping[str, Any]) -> int:
    """The task instance's try number (1 outside a task run)."""
    ti = context.get("ti")
    return int(getattr(ti, "try_number", None) or 1)


def first_try_bound(context: Context | Mapping[str, Any]) -> float | None:
    """On a retry, epoch seconds no later than the start of this task instance's first try: items created
    since then may be an earlier try's work. ``None`` on a first try (each row's own first attempt is the
    bound then) or when the run's start is unknown.

    Airflow 3 gives a try only its own ``ti.start_date`` and clears the task's XComs before each try, so
    the first try's start survives nowhere. The DAG run's ``start_date`` does (set when the run starts,
    reset only when the run is cleared) and is never later: an item made for the same template and
    recipient between the run's start and the task's first try is taken for the task's own.
    """
    if try_number(context) <= 1:
        return None
    start = getattr(context.get("dag_run"), "start_date", None)
    return start.timestamp() if isinstance(start, datetime) else None


def as_list(value: Any, what: str) -> list[Any]:
    """A templated list argument: a list, a JSON string of a list, or one scalar."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{what} is not valid JSON: {exc}") from None
        else:
            return [text] if text else []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise ValueError(f"{what} must be a list, got {type(value).__name__}")


def load_rows(
    rows: Any,
    *,
    sql: str | None,
    sql_conn_id: str | None,
    parameters: Mapping[str, Any] | Sequence[Any] | None,
    column_mapping: Mapping[str, str] | None,
    what: str = "rows",
) -> list[Any]:
    """The input rows: ``rows`` (a list, XCom or JSON string; mappings keep only the fields of
    ``column_mapping``, renamed) or the rows of the ``sql`` query on ``sql_conn_id``; exactly one of them.

    :param what: the name of the ``rows`` argument, for error messages.
    """
    from airflow_provider_credly.hooks.sql import iter_query_rows, map_row  # common.sql: imported on use

    if (rows is None) == (sql is None):
        raise ValueError(f"give exactly one of {what} or sql")
    if sql is not None:
        if not sql_conn_id:
            raise ValueError("sql needs sql_conn_id")
        return list(iter_query_rows(sql_conn_id, sql, parameters=parameters, column_mapping=column_mapping))
    return [map_row(r, column_mapping) if isinstance(r, Mapping) else r for r in as_list(rows, what)]


def issue_xcom(operator: BaseOperator, result: IssueResult, *, kind: str, what: str) -> dict[str, Any]:
    """The XCom of an operator's single issue (``{"outcome", **summary}``); a failed result fails the task.

    :param kind: the item's name in the log (``Badge``, ``Assertion``).
    :param what: the item in the failure message (``badge for 'a@b.c'``).
    """
    if result.outcome == "failed":
        if result.error is not None and is_permanent(result.error):  # a 401, an invalid field: not retried
            raise as_permanent(result.error)
        raise AirflowException(f"{what} not issued: {result.reason}")
    operator.log.info("%s %s: %s", kind, result.badge_id, result.outcome)
    return {"outcome": result.outcome, **(result.badge or {})}


def report_or_raise(
    context: Context | Mapping[str, Any],
    xcom: dict[str, Any],
    *,
    failed: int,
    max_failures: int,
    message: str,
    incomplete: bool = False,
    permanent: bool = False,
) -> dict[str, Any]:
    """The threshold step of every many-item operator: return ``xcom``; but when more than ``max_failures``
    items failed or the work is ``incomplete`` (items not attempted), push ``xcom`` under the XCom key
    ``report`` (a failed task returns nothing) and fail the task with ``message``.

    :param failed: how many items failed.
    :param permanent: a retry cannot fix any of the failures (see
        :func:`~airflow_provider_credly.operators.failures.all_permanent`): over the threshold the task fails
        with an :class:`AirflowFailException`, so Airflow spends no retry on rows that would fail again.
        Otherwise (and when the work is only incomplete) it stays retryable.
    """
    if failed > max_failures or incomplete:
        context["ti"].xcom_push(key="report", value=xcom)
        if permanent and failed > max_failures:
            raise AirflowFailException(f"{message}; a retry cannot fix these failures (e.g. a 401, a 422)")
        raise AirflowException(message)
    return xcom


_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off", "")


def _coerce(value: Any, kind: str, name: str) -> Any:
    """A rendered template value (a string) back to ``kind`` (``flag``, ``int``, ``float``); ``None`` stays."""
    if value is None or (kind == "flag" and isinstance(value, bool)):
        return value
    try:
        if kind == "flag":
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        return float(value) if value != "" else None
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be {'true or false' if kind == 'flag' else 'a number'}, got {value!r}"
        ) from None


HookT = TypeVar("HookT", bound="CredlyHook | CanvasCredentialsHook")


class ApiOperator(FailFastMixin, BaseOperator, Generic[HookT]):
    """Shared by the operators of both backends: a lazily built hook on the connection named by the
    attribute :attr:`conn_id_attr`, :attr:`typed_fields` converted back to their types once rendered,
    errors a retry cannot fix failing the task at once (:mod:`~airflow_provider_credly.operators.failures`)
    and OpenLineage facets naming the API collection the task wrote (:meth:`lineage_outputs`).

    Each backend's base (:class:`CredlyBaseOperator`, :class:`CanvasCredentialsBaseOperator`) declares its
    connection id as an explicit keyword argument of its own ``__init__``: Airflow fills ``default_args``
    only into the arguments an ``__init__`` names.
    """

    #: the backend's hook class, built with the connection id and a pool size
    hook_class: type[HookT]
    #: the attribute holding the connection id (``credly_conn_id``, ``canvas_credentials_conn_id``)
    conn_id_attr: str
    #: attribute name -> ``flag``/``int``/``float``: templated, converted back once rendered.
    typed_fields: dict[str, str] = {}

    def coerce_typed_fields(self) -> None:
        """Convert rendered string values of :attr:`typed_fields` (``"{{ params.x }}"``) to their types."""
        for name, kind in self.typed_fields.items():
            setattr(self, name, _coerce(getattr(self, name), kind, name))

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Converted here rather than in render_template_fields: a mapped task's unmapped copy is rendered
        # through this method only (MappedOperator.render_template_fields). ``parent`` is a nested object
        # when Airflow renders nested template fields; only the operator's own fields are typed.
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self:
            self.coerce_typed_fields()

    @cached_property
    def hook(self) -> HookT:
        """The backend's hook (built on first use, never in the constructor)."""
        # one HTTP connection per worker thread, at least the hook's default 16
        pool_size = max(16, int(getattr(self, "workers", 0) or 0))
        return self.hook_class(getattr(self, self.conn_id_attr), pool_size=pool_size)

    def lineage_outputs(self) -> list[DatasetRef]:
        """The API collections the task wrote, as OpenLineage datasets (each backend names them)."""
        return []

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the API collection written (see :meth:`lineage_outputs`)."""
        return operator_lineage(outputs=self.lineage_outputs())


class CredlyBaseOperator(ApiOperator[CredlyHook]):
    """The base of the Credly operators: the Credly connection id and hook, the "Credly organization"
    extra link, and lineage naming the organization's :attr:`lineage_collection`."""

    hook_class = CredlyHook
    conn_id_attr = "credly_conn_id"
    operator_extra_links: tuple[BaseOperatorLink, ...] = (CredlyOrganizationLink(),)
    #: the organization's collection the operator writes (``credly://<API host>``,
    #: ``organizations/<org>/<collection>``)
    lineage_collection = "badges"

    def __init__(self, *, credly_conn_id: str = CredlyHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credly_conn_id = credly_conn_id

    def lineage_outputs(self) -> list[DatasetRef]:
        client = self.hook.client
        return [credly_collection(client.http.base_url, client.organization_id, self.lineage_collection)]

    def check_token(self, require: str | None = None) -> None:
        """Check the connection's token once (see :meth:`CredlyHook.check_token`): one warning when it has
        fewer than ``expiry_warn_days`` left, and with ``require`` (``"write"`` before issuing) the task
        fails with the reason before anything is sent when the token lacks that permission."""
        try:
            self.hook.check_token(require=require)
        except PermissionError as exc:  # a retry cannot grant the permission: fail without retries
            raise AirflowFailException(str(exc)) from None

    def after_error(self) -> None:
        """After a failed try too: one warning when the token is about to expire (never raises)."""
        with contextlib.suppress(PermissionError):
            self.hook.check_token()

    def post_execute(self, context: Any, result: Any = None) -> None:
        # Every Credly task warns about a token about to expire (one look-up per hook; a task that
        # already checked, such as an issuing one, sends nothing more; never fails the task).
        super().post_execute(context, result)
        self.check_token()


class CanvasCredentialsBaseOperator(ApiOperator[CanvasCredentialsHook]):
    """The base of the Canvas Credentials operators: the Canvas Credentials connection id and hook, and
    lineage naming the collections of :meth:`lineage_paths`."""

    hook_class = CanvasCredentialsHook
    conn_id_attr = "canvas_credentials_conn_id"

    def lineage_paths(self) -> list[str]:
        """The collections the operator wrote (``badgeclasses/<id>/assertions``...); ``assertions`` here."""
        return ["assertions"]

    def lineage_outputs(self) -> list[DatasetRef]:
        base_url = self.hook.client.http.base_url
        return [canvas_collection(base_url, path) for path in self.lineage_paths()]

    def __init__(
        self, *, canvas_credentials_conn_id: str = CanvasCredentialsHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.canvas_credentials_conn_id = canvas_credentials_conn_id


#: the report table's leading columns, filled from the run (``(name, SQL type)``)
REPORT_RUN_COLUMNS = (
    ("dag_id", "VARCHAR(250)"),
    ("run_id", "VARCHAR(250)"),
    ("task_id", "VARCHAR(250)"),
    ("try_number", "INTEGER"),
    ("row_index", "INTEGER"),
    ("outcome", "VARCHAR(20)"),
)


#: the bulk issue operators' shared template fields (each operator adds its own and its connection id)
BULK_TEMPLATE_FIELDS = (
    "rows",
    "sql",
    "sql_conn_id",
    "parameters",
    "column_mapping",
    "defaults",
    "if_exists",
    "workers",
    "max_requests_per_second",
    "max_failures",
    "report_conn_id",
    "report_table",
    "max_xcom_rows",
)


class BulkIssueMixin(ApiOperator[HookT]):
    """Shared by the bulk issue operators of both backends (before their backend's base class): their
    common arguments, input rows from ``rows`` or ``sql``, one bulk run with its stop event (set by
    ``on_kill``), the report's logging and XCom, and the optional per-row report table (``report_conn_id``
    + ``report_table``).

    An operator class, so that Airflow fills ``default_args`` into the arguments of this ``__init__`` too
    (it wraps the ``__init__`` of every operator class that defines one). The arguments are documented on
    each bulk operator.
    """

    #: the report table's column holding the created item's id (``badge_id``, ``assertion_id``)
    report_id_column: str = "badge_id"
    #: ``(column, SQL type, key of the validated row)`` describing each row in the report table
    report_row_columns: tuple[tuple[str, str, str], ...] = ()
    template_fields_renderers = {
        "sql": "sql",
        "rows": "json",
        "defaults": "json",
        "column_mapping": "json",
        "parameters": "json",
    }
    template_ext: Sequence[str] = (".sql",)
    typed_fields = {
        "workers": "int",
        "max_requests_per_second": "float",
        "max_failures": "int",
        "max_xcom_rows": "int",
    }

    def __init__(
        self,
        *,
        rows: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        column_mapping: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        if_exists: IfExists = "return",
        workers: int = 8,
        max_requests_per_second: float | None = None,
        max_failures: int = 0,
        report_conn_id: str | None = None,
        report_table: str | None = None,
        max_xcom_rows: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rows = rows
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.column_mapping = column_mapping
        self.defaults = defaults
        self.if_exists = if_exists
        self.workers = workers
        self.max_requests_per_second = max_requests_per_second
        self.max_failures = max_failures
        self.report_conn_id = report_conn_id
        self.report_table = report_table
        self.max_xcom_rows = max_xcom_rows
        self._stop = threading.Event()

    def load_rows(self) -> list[Any]:
        """The input rows (from ``rows`` or ``sql``)."""
        return load_rows(
            self.rows,
            sql=self.sql,
            sql_conn_id=self.sql_conn_id,
            parameters=self.parameters,
            column_mapping=self.column_mapping,
        )

    def run_bulk_rows(
        self,
        context: Context | Mapping[str, Any],
        runner: Callable[..., BulkIssueReport],
        rows: Sequence[Mapping[str, Any]],
        *,
        noun: str,
        write_report: Callable[[BulkIssueReport], None] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Run ``runner`` (``run_bulk_issue``, ``run_bulk_award``) over validated ``rows`` with the hook's
        client and the operator's workers, threshold and pacing plus ``options``; log the counts and failed
        rows, call ``write_report`` (e.g. to write the report table), and return the XCom through
        :func:`report_or_raise` (any row not attempted fails the task too; when every failed row met an
        error a retry cannot fix, such as a 401 for each row, the task fails without retries).

        :param noun: what was issued, for the failure message (``badge``, ``assertion``).
        """
        self._stop = threading.Event()  # fresh per try: the operator object may be reused across tries
        report = runner(
            self.hook.client,
            rows,
            workers=self.workers,
            max_failures=self.max_failures,
            if_exists=self.if_exists,
            max_requests_per_second=self.max_requests_per_second,
            stop=self._stop,
            progress=lambda counts: self.log.info("Progress: %s", counts),
            **options,
        )
        counts = report.counts()
        self.log.info(
            "Done: %s; 429 responses: %d; recovered after unknown outcome: %d",
            counts,
            report.throttled,
            report.recovered,
        )
        for i, outcome, _, reason in report.rows():
            if outcome == "failed":
                self.log.warning("Row %d failed: %s", i, reason)
        if write_report is not None:
            write_report(report)
        return report_or_raise(
            context,
            report.to_xcom(self.max_xcom_rows),
            failed=counts["failed"],
            max_failures=self.max_failures,
            incomplete=counts["skipped"] > 0,
            permanent=all_permanent(report.failure_errors()),
            message=f"{counts['failed'] + counts['skipped']} of {report.total} {noun}(s) not issued "
            f"({counts['failed']} failed, {counts['skipped']} not attempted; max_failures={self.max_failures})",
        )

    @property
    def report_columns(self) -> tuple[tuple[str, str], ...]:
        """The report table's ``(name, SQL type)`` columns."""
        row_columns = tuple((name, sqltype) for name, sqltype, _ in self.report_row_columns)
        return (
            *REPORT_RUN_COLUMNS,
            (self.report_id_column, "VARCHAR(64)"),
            ("reason", "TEXT"),
            *row_columns,
            ("recorded_at", "TIMESTAMP"),
        )

    def report_writer(
        self, context: Context | Mapping[str, Any], rows: Sequence[Mapping[str, Any]], tries: int
    ) -> Callable[[BulkIssueReport], None] | None:
        """The ``write_report`` callback appending one row per input row to ``report_table`` (``None``
        without a report table).

        :raises ValueError: ``report_table`` without ``report_conn_id`` (checked before any call).
        """
        if not self.report_table:
            return None
        if not self.report_conn_id:
            raise ValueError("report_table needs report_conn_id")
        conn_id, table = str(self.report_conn_id), str(self.report_table)
        ti = context.get("ti")
        run = (
            getattr(ti, "dag_id", None) or self.dag_id,
            getattr(ti, "run_id", None) or context.get("run_id"),
            self.task_id,
            tries,
        )

        def write(report: BulkIssueReport) -> None:
            from airflow_provider_credly.hooks.sql import write_rows

            now = datetime.now(UTC).replace(tzinfo=None)
            keys = [key for _, _, key in self.report_row_columns]
            values = (
                (*run, i, outcome, item_id, reason, *(rows[i].get(k) for k in keys), now)
                for i, outcome, item_id, reason in report.rows()
            )
            write_rows(conn_id, table, self.report_columns, values)
            self.log.info("Per-row report written to %s", table)

        return write

    def on_kill(self) -> None:
        self._stop.set()
