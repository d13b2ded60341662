"""Shared plumbing of the Credly and Canvas Credentials operators: the connection and lazily built hook,
the run date, the try number, template fields rendered to strings converted back to lists, flags and
numbers, input rows from a list or a query, and the results of single and bulk issuing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_credly.hooks.credly import CredlyHook
from airflow_provider_credly.issuing.bulk import BulkIssueReport, IssueResult

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "BulkRowsMixin",
    "CredlyBaseOperator",
    "as_list",
    "finish_bulk_issue",
    "first_try_bound",
    "hook_pool_size",
    "issue_xcom",
    "load_rows",
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
        raise AirflowException(f"{what} not issued: {result.reason}")
    operator.log.info("%s %s: %s", kind, result.badge_id, result.outcome)
    return {"outcome": result.outcome, **(result.badge or {})}


def finish_bulk_issue(
    operator: BaseOperator,
    context: Context | Mapping[str, Any],
    report: BulkIssueReport,
    *,
    noun: str,
    max_failures: int,
    max_xcom_rows: int,
    write_report: Callable[[BulkIssueReport], None] | None = None,
) -> dict[str, Any]:
    """Log a bulk issue's counts and failed rows in ``operator``'s log, then return its XCom; when more
    than ``max_failures`` rows failed or any row was not attempted, push the XCom under ``report`` and fail
    the task.

    :param noun: what was issued, for the failure message (``badge``, ``assertion``).
    :param write_report: called with the report after the logging, before the XCom (e.g. to write a
        report table).
    """
    counts = report.counts()
    operator.log.info(
        "Done: %s; 429 responses: %d; recovered after unknown outcome: %d",
        counts,
        report.throttled,
        report.recovered,
    )
    for i, outcome, _, reason in report.rows():
        if outcome == "failed":
            operator.log.warning("Row %d failed: %s", i, reason)
    if write_report is not None:
        write_report(report)
    xcom = report.to_xcom(max_xcom_rows)
    if counts["failed"] > max_failures or counts["skipped"]:
        context["ti"].xcom_push(key="report", value=xcom)
        raise AirflowException(
            f"{counts['failed'] + counts['skipped']} of {report.total} {noun}(s) not issued "
            f"({counts['failed']} failed, {counts['skipped']} not attempted; max_failures={max_failures})"
        )
    return xcom


def hook_pool_size(operator: BaseOperator) -> int:
    """HTTP connections for an operator's hook: 16, or its ``workers`` when more."""
    return max(16, int(getattr(operator, "workers", 0) or 0))


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


class CredlyBaseOperator(BaseOperator):
    """Shared plumbing: the connection id, a lazily built hook and typed template fields."""

    #: attribute name -> ``flag``/``int``/``float``: templated, converted back before use.
    typed_fields: dict[str, str] = {}

    def __init__(self, *, credly_conn_id: str = CredlyHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credly_conn_id = credly_conn_id

    def coerce_typed_fields(self) -> None:
        """Convert rendered string values of :attr:`typed_fields` (``"{{ params.x }}"``) to their types."""
        for name, kind in self.typed_fields.items():
            setattr(self, name, _coerce(getattr(self, name), kind, name))

    @cached_property
    def hook(self) -> CredlyHook:
        """The Credly hook (built on first use, never in the constructor)."""
        return CredlyHook(self.credly_conn_id, pool_size=hook_pool_size(self))


#: the report table's leading columns, filled from the run (``(name, SQL type)``)
REPORT_RUN_COLUMNS = (
    ("dag_id", "VARCHAR(250)"),
    ("run_id", "VARCHAR(250)"),
    ("task_id", "VARCHAR(250)"),
    ("try_number", "INTEGER"),
    ("row_index", "INTEGER"),
    ("outcome", "VARCHAR(20)"),
)


class BulkRowsMixin:
    """Shared by the bulk issue operators (before their operator base class): input rows from ``rows`` or
    ``sql``, one bulk run with its stop event (set by ``on_kill``), the report's logging and XCom, and the
    optional per-row report table (``report_conn_id`` + ``report_table``).
    """

    #: the report table's column holding the created item's id (``badge_id``, ``assertion_id``)
    report_id_column: str = "badge_id"
    #: ``(column, SQL type, key of the validated row)`` describing each row in the report table
    report_row_columns: tuple[tuple[str, str, str], ...] = ()
    report_conn_id: str | None
    report_table: str | None

    rows: Any
    sql: str | None
    sql_conn_id: str | None
    parameters: Mapping[str, Any] | Sequence[Any] | None
    column_mapping: Mapping[str, str] | None
    if_exists: str
    workers: int
    max_requests_per_second: float | None
    max_failures: int
    max_xcom_rows: int
    _stop: threading.Event

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
        client: Any,
        rows: Sequence[Mapping[str, Any]],
        *,
        noun: str,
        write_report: Callable[[BulkIssueReport], None] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Run ``runner`` (``run_bulk_issue``, ``run_bulk_award``) over validated ``rows`` with the
        operator's workers, threshold and pacing plus ``options``; then :func:`finish_bulk_issue`.
        """
        operator = cast(BaseOperator, self)
        self._stop = threading.Event()  # fresh per try: the operator object may be reused across tries
        report = runner(
            client,
            rows,
            workers=self.workers,
            max_failures=self.max_failures,
            if_exists=self.if_exists,
            max_requests_per_second=self.max_requests_per_second,
            stop=self._stop,
            progress=lambda counts: operator.log.info("Progress: %s", counts),
            **options,
        )
        return finish_bulk_issue(
            operator,
            context,
            report,
            noun=noun,
            max_failures=self.max_failures,
            max_xcom_rows=self.max_xcom_rows,
            write_report=write_report,
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
        operator = cast(BaseOperator, self)
        ti = context.get("ti")
        run = (
            getattr(ti, "dag_id", None) or operator.dag_id,
            getattr(ti, "run_id", None) or context.get("run_id"),
            operator.task_id,
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
            operator.log.info("Per-row report written to %s", table)

        return write

    def on_kill(self) -> None:
        self._stop.set()
