"""Rows in and out of any common.sql connection: read a query's rows as dicts (streamed with a cursor,
renamed by a column mapping) and write per-row outcome reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook

from airflow_provider_credly.warehouse.schema import TableName

__all__ = ["check_table_name", "get_db_hook", "iter_query_rows", "map_row", "write_rows"]


def get_db_hook(conn_id: str) -> DbApiHook:
    """The common.sql hook of connection ``conn_id`` (PostgreSQL, DuckDB, SQLite, Snowflake, ...)."""
    hook = BaseHook.get_connection(conn_id).get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise ValueError(
            f"connection {conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook: "
            "use a SQL database connection"
        )
    return hook


def check_table_name(table: str) -> str:
    """``table`` as SQL text if it follows the package's table-name rule (``[schema.]table``, see
    :class:`~airflow_provider_credly.warehouse.schema.TableName`), else ``ValueError``."""
    return str(TableName.parse(table))


def map_row(row: Mapping[str, Any], column_mapping: Mapping[str, str] | None) -> dict[str, Any]:
    """``{field: row[column]}`` for each ``field: column`` of the mapping, or the row as is without one."""
    if not column_mapping:
        return dict(row)
    return {name: row.get(column) for name, column in column_mapping.items()}


def iter_query_rows(
    conn_id: str,
    sql: str,
    *,
    parameters: Mapping[str, Any] | Sequence[Any] | None = None,
    column_mapping: Mapping[str, str] | None = None,
    fetch_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Stream the rows of ``sql`` as dicts (column name -> value), renamed by ``column_mapping``
    (``{field: column}``; only the mapped fields are kept).

    A mapping that names a column the query does not return raises ``ValueError`` before any row is read.
    """
    hook = get_db_hook(conn_id)
    conn = hook.get_conn()
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        columns = [str(d[0]) for d in cursor.description or ()]
        if column_mapping:
            missing = sorted(c for c in column_mapping.values() if c not in columns)
            if missing:
                raise ValueError(
                    f"column_mapping names column(s) {', '.join(missing)} that the query does not return "
                    f"(it returns {', '.join(columns)})"
                )
        while True:
            batch = cursor.fetchmany(fetch_size)
            if not batch:
                return
            for values in batch:
                yield map_row(dict(zip(columns, values, strict=True)), column_mapping)
    finally:
        cursor.close()
        conn.close()


def write_rows(
    conn_id: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    create: bool = True,
    commit_every: int = 1000,
) -> None:
    """Append ``rows`` to ``table`` through the connection's hook, creating it first when ``create``.

    :param columns: ``(name, SQL type)`` pairs; use portable types (``VARCHAR(n)``, ``TEXT``, ``INTEGER``,
        ``TIMESTAMP``).
    """
    check_table_name(table)
    hook = get_db_hook(conn_id)
    if create:
        ddl = ", ".join(f"{name} {sqltype}" for name, sqltype in columns)
        hook.run(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    hook.insert_rows(
        table,
        (tuple(r) for r in rows),
        target_fields=[name for name, _ in columns],
        commit_every=commit_every,
        executemany=True,
    )
