"""sql_rows against a real DuckDB file: streaming with a column mapping, report writing, guards."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from airflow_provider_credly.hooks.sql import (
    check_table_name,
    get_db_hook,
    iter_query_rows,
    map_row,
    write_rows,
)
from tests.conftest import set_connection


@pytest.fixture
def warehouse(duckdb_conn):
    con = duckdb.connect(str(duckdb_conn))
    con.execute("create table people (mail varchar, given varchar, n integer, seen timestamp)")
    con.executemany(
        "insert into people values (?, ?, ?, ?)",
        [(f"p{i}@x.org", f"G{i}", i, datetime(2026, 1, 1, i % 24)) for i in range(300)],
    )
    con.close()
    return duckdb_conn


def test_iter_query_rows_streams_and_maps(warehouse) -> None:
    rows = list(
        iter_query_rows(
            "duckdb_warehouse",
            "select * from people where n >= ? order by n",
            parameters=[10],
            column_mapping={"recipient_email": "mail", "issued_at": "seen"},
            fetch_size=40,
        )
    )
    assert len(rows) == 290
    assert rows[0] == {"recipient_email": "p10@x.org", "issued_at": datetime(2026, 1, 1, 10)}


def test_mapping_to_a_missing_column_fails_before_reading(warehouse) -> None:
    with pytest.raises(ValueError, match="nope"):
        list(iter_query_rows("duckdb_warehouse", "select * from people", column_mapping={"x": "nope"}))


def test_write_rows_creates_and_appends(warehouse) -> None:
    cols = [("row_index", "INTEGER"), ("outcome", "VARCHAR(20)"), ("reason", "TEXT")]
    write_rows("duckdb_warehouse", "report", cols, [(0, "issued", None), (1, "failed", "bad")])
    write_rows("duckdb_warehouse", "report", cols, [(2, "issued", None)])
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select * from report order by 1").fetchall() == [
            (0, "issued", None),
            (1, "failed", "bad"),
            (2, "issued", None),
        ]
    finally:
        con.close()


def test_guards(monkeypatch) -> None:
    with pytest.raises(ValueError, match="identifier"):
        check_table_name("report; drop table x")
    assert check_table_name("analytics.credly_report") == "analytics.credly_report"
    assert map_row({"a": 1, "b": 2}, {"x": "b"}) == {"x": 2}
    assert map_row({"a": 1}, None) == {"a": 1}
    set_connection(monkeypatch, "not_sql", conn_type="credly", host="https://api.credly.com/v1", password="t")
    with pytest.raises(ValueError, match="not a common.sql DbApiHook"):
        get_db_hook("not_sql")


@pytest.mark.parametrize("good", ["report", "analytics.credly_report", "_t.x1"])
def test_check_table_name_accepts_the_warehouse_rule(good) -> None:
    assert check_table_name(good) == good


@pytest.mark.parametrize(
    "bad", ["", "db.analytics.report", "a.b.c.d", "1abc", "a-b", "a. b", "x;drop table y"]
)
def test_check_table_name_refuses_what_the_warehouse_refuses(bad) -> None:
    # one rule (warehouse.schema.TableName): a name the transfers refuse is refused here too
    with pytest.raises(ValueError, match="identifier"):
        check_table_name(bad)
