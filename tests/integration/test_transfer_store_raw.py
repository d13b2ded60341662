"""``store_raw``: the raw JSON column filled (default) or left NULL, the typed columns the same either way,
through every writer path (DuckDB and PostgreSQL append-only and merge, the portable SQLite path) and through
the operator over HTTP to the emulator."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import duckdb
import psycopg
import pytest

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator
from airflow_provider_credly.warehouse import BADGES, DuckDBWriter, PostgresWriter, SqlWriter, TableName
from airflow_provider_credly.warehouse.records import page_records
from airflow_provider_credly.warehouse.writers import LoadMeta
from tests.conftest import POSTGRES_DSN

pytestmark = [pytest.mark.integration]

TYPED = ", ".join(c.name for c in BADGES.columns if c.path)


def _badge(i: int, **extra: object) -> dict[str, object]:
    return {
        "id": f"id-{i:04d}",
        "state": "accepted",
        "recipient_email": f"e{i}@example.com",
        "public": i % 2 == 0,
        "issued_at": "2025-01-02T03:04:05.000Z",
        "created_at": f"2025-01-{1 + i % 28:02d}T10:00:00+02:00",
        "updated_at": f"2025-01-{1 + i % 28:02d}T00:00:00.000Z",
        "badge_template": {"id": f"t{i % 3}", "name": "T", "skills": ["S1"]},
        "user": {"id": f"u{i}"},
        **extra,
    }


def _records() -> list[dict[str, object]]:
    odd = [
        _badge(100, locale=True, issued_to={"first": "A"}),  # non-string values in text columns
        _badge(101, issued_to="NUL\u0000 here", badge_template="not an object"),
        _badge(102, public=None, expires_at=None, note='tab\t "q" \\ end'),
    ]
    return [_badge(i) for i in range(40)] + odd


def _page(items: list[dict[str, object]], pretty: bool) -> object:
    text = json.dumps(items, indent="\t" if pretty else None, ensure_ascii=pretty)
    return page_records(Page(None, "u", None, {}, records_json=text.encode()))


@pytest.fixture(params=["duckdb", "postgres", "sqlite"])
def make_writer(request, tmp_path):
    made = []

    def make(name: str, store_raw: bool) -> SqlWriter:
        table = TableName.parse(name)
        if request.param == "duckdb":
            writer: SqlWriter = DuckDBWriter(
                duckdb.connect(str(tmp_path / f"{name}.duckdb")), BADGES, table, store_raw=store_raw
            )
        elif request.param == "sqlite":
            conn = sqlite3.connect(str(tmp_path / f"{name}.sqlite"))
            writer = SqlWriter(conn, BADGES, table, placeholder="?", store_raw=store_raw)
        else:
            request.getfixturevalue("postgres_available")
            schema = f"raw_{name}_{tmp_path.name[-8:]}".lower().replace("-", "_")
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                admin.execute(f'drop schema if exists "{schema}" cascade')
                admin.execute(f'create schema "{schema}"')
            writer = PostgresWriter(
                psycopg.connect(POSTGRES_DSN, options=f"-c search_path={schema}"),
                BADGES,
                table,
                store_raw=store_raw,
            )
            made.append(schema)
        writer.ensure_tables()
        return writer

    yield make
    for schema in made:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            admin.execute(f'drop schema if exists "{schema}" cascade')


def _load(writer: SqlWriter, *, append_only: bool) -> None:
    items = _records()
    writer.prepare_load(append_only=append_only)
    meta = LoadMeta.new("l1")
    writer.write([_page(items[:20], pretty=True), _page(items[20:], pretty=False)], meta)
    writer.commit()
    if not append_only:  # the merge path again over rows already there: an update of every row
        writer.write([_page(items, pretty=False)], LoadMeta.new("l2"))
        writer.commit()


def _typed(writer: SqlWriter) -> list[tuple[object, ...]]:
    return sorted(writer.fetchall(f"SELECT {TYPED} FROM {writer.table}"))


@pytest.mark.parametrize("append_only", [True, False], ids=["append-only", "merge"])
def test_store_raw_false_leaves_raw_null_and_the_typed_columns_unchanged(make_writer, append_only):
    with_raw = make_writer("with_raw", True)
    without = make_writer("without", False)
    if append_only and isinstance(with_raw, SqlWriter) and not with_raw.deletes_before_insert:
        pytest.skip("this writer has no append-only path")
    for writer in (with_raw, without):
        _load(writer, append_only=append_only)
    n = len(_records())
    assert with_raw.fetchall("SELECT COUNT(*), COUNT(raw) FROM with_raw") == [(n, n)]
    assert without.fetchall("SELECT COUNT(*), COUNT(raw) FROM without") == [(n, 0)]
    typed = _typed(with_raw)
    assert typed == _typed(without)
    by_id = {row[0]: row for row in typed}
    names = [c.name for c in BADGES.columns if c.path]
    odd = dict(zip(names, by_id["id-0100"], strict=True))
    # as PostgreSQL's ->> and DuckDB's VARCHAR read them (the portable path writes Python's str())
    expected_true = "True" if with_raw.dialect == "generic" else "true"
    assert odd["locale"] == expected_true and json.loads(str(odd["issued_to"])) == {"first": "A"}
    nul = dict(zip(names, by_id["id-0101"], strict=True))
    assert nul["badge_template_id"] is None
    assert str(nul["issued_to"]).replace("\x00", "") == "NUL here"
    raw = with_raw.fetchall("SELECT CAST(raw AS TEXT) FROM with_raw WHERE id = 'id-0102'")[0][0]
    assert json.loads(raw)["note"] == 'tab\t "q" \\ end'
    for writer in (with_raw, without):
        writer.close()


def test_operator_store_raw_false_over_http(credly_conn, duckdb_conn):
    op = CredlyBadgesToSqlOperator(
        task_id="load",
        table="credly_badges",
        destination_conn_id="duckdb_warehouse",
        badge_format="minimal",
        store_raw=False,
    )
    result = op.execute({"data_interval_start": datetime(2026, 3, 2, tzinfo=UTC)})
    with duckdb.connect(str(duckdb_conn)) as con:
        counts = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT id), COUNT(raw), COUNT(created_at) FROM credly_badges"
        )
        assert counts.fetchone() == (result["rows"], result["rows"], 0, result["rows"])
    assert result["rows"] > 0
