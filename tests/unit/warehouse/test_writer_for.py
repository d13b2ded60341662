"""writer_for chooses the writer by the hook's SQL dialect (common-sql's ``dialect_name``), one case per dialect."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.duckdb.hooks.duckdb import DuckDBHook
from airflow.providers.postgres.hooks.postgres import PostgresHook

from airflow_provider_credly.warehouse.schema import BADGES, TableName
from airflow_provider_credly.warehouse.writers import (
    DuckDBWriter,
    LoadMeta,
    PostgresWriter,
    SqlWriter,
    dialect_of,
    writer_for,
)
from tests.conftest import set_connection

TABLE = TableName.parse("badges")


class _SqliteHook(DbApiHook):
    """A minimal SQLite hook: common-sql derives its dialect from the connection's URI."""

    conn_name_attr = "sqlite_conn_id"
    default_conn_name = "sqlite_default"
    conn_type = "sqlite"
    hook_name = "SQLite (test)"
    _placeholder = "?"

    def get_conn(self) -> Any:
        return sqlite3.connect(self.get_connection(self.sqlite_conn_id).host)


def test_duckdb_hook_gets_the_duckdb_writer(tmp_path, monkeypatch):
    set_connection(monkeypatch, "wh", conn_type="duckdb", host=str(tmp_path / "w.duckdb"))
    hook = DuckDBHook(duckdb_conn_id="wh")
    assert dialect_of(hook) == "duckdb"
    writer = writer_for(hook, BADGES, TABLE)
    try:
        assert type(writer) is DuckDBWriter
    finally:
        writer.close()


def test_a_duckdb_hook_reporting_the_default_dialect_falls_back_on_its_connection_type(tmp_path, monkeypatch):
    # an older DuckDB provider leaves dialect_name to common-sql, which says "default" without duckdb-engine
    set_connection(
        monkeypatch, "wh", conn_type="duckdb", host=str(tmp_path / "w.duckdb"), extra={"dialect": "default"}
    )
    hook = DuckDBHook(duckdb_conn_id="wh")
    assert hook.dialect_name == "default"
    assert dialect_of(hook) == "duckdb"
    writer = writer_for(hook, BADGES, TABLE, children=True)
    try:
        assert type(writer) is DuckDBWriter
        assert writer.children is True
    finally:
        writer.close()


class _CompanyWarehouseHook(PostgresHook):
    """A house hook on PostgreSQL: neither its module nor its name says so, its dialect does."""


@pytest.mark.parametrize("hook_class", [PostgresHook, _CompanyWarehouseHook])
def test_postgres_hook_gets_the_postgres_writer(hook_class, monkeypatch):
    hook = hook_class(postgres_conn_id="unused")
    assert hook.dialect_name == "postgresql"
    conn = object()  # no server needed: the writer does not touch the connection until it writes
    monkeypatch.setattr(hook, "get_conn", lambda: conn)
    writer = writer_for(hook, BADGES, TABLE)
    assert type(writer) is PostgresWriter
    assert (writer.conn, writer.placeholder) == (conn, "%s")


def test_sqlite_hook_gets_the_portable_writer_with_its_placeholder(tmp_path, monkeypatch):
    set_connection(monkeypatch, "lite", conn_type="sqlite", host=str(tmp_path / "w.sqlite"))
    hook = _SqliteHook(sqlite_conn_id="lite")
    assert dialect_of(hook) == "sqlite"
    writer = writer_for(hook, BADGES, TABLE)
    try:
        assert type(writer) is SqlWriter
        assert writer.placeholder == "?"
        writer.ensure_tables()
        assert writer.upsert([{"id": "b1", "state": "accepted"}], LoadMeta.new("l")) == 1
        writer.commit()
        assert writer.fetchall("SELECT id, state, _load_id FROM badges") == [("b1", "accepted", "l")]
    finally:
        writer.close()


class _OtherHook:
    """A DB-API hook of another database (``dialect``: its dialect name, ``None``: unreadable)."""

    placeholder = "%s"
    conn_type = "duckdb_like"  # says nothing known: only "default" or no dialect falls back on it

    def __init__(self, dialect: str | None) -> None:
        self.dialect = dialect

    @property
    def dialect_name(self) -> str:
        if self.dialect is None:
            raise ValueError("no URI")  # common-sql parses the connection's URI
        return self.dialect

    def get_conn(self) -> Any:
        return sqlite3.connect(":memory:")


@pytest.mark.parametrize(("dialect", "seen"), [("mssql", "mssql"), (None, "duckdb_like")])
def test_another_dialect_gets_the_portable_writer(dialect, seen):
    hook = _OtherHook(dialect)
    assert dialect_of(hook) == seen
    writer = writer_for(hook, BADGES, TABLE)
    try:
        assert type(writer) is SqlWriter
        assert writer.placeholder == "%s"
    finally:
        writer.close()
