"""A transfer that fails validation creates no table (checkpoint or data) in the destination."""

from __future__ import annotations

import duckdb
import pytest

from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgesToSqlOperator,
    CredlyEmployeesToSqlOperator,
    CredlyEventsToSqlOperator,
)
from tests.conftest import set_connection


def _tables(path) -> list[str]:
    with duckdb.connect(str(path)) as conn:
        return [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    set_connection(monkeypatch, "wh", conn_type="duckdb", host=str(path))
    return path


@pytest.mark.parametrize(
    "operator", [CredlyBadgesToSqlOperator, CredlyEmployeesToSqlOperator, CredlyEventsToSqlOperator]
)
def test_no_organization_id_fails_before_any_table(operator, db_path, monkeypatch):
    # unreachable host: a request would fail with a connection error, not the ValueError below
    set_connection(
        monkeypatch, "credly_default", conn_type="credly", host="http://127.0.0.1:9/v1", password="tok-123456"
    )
    with pytest.raises(ValueError, match="organization_id"):
        operator(task_id="t", table="loaded", destination_conn_id="wh").execute({})
    assert _tables(db_path) == []


@pytest.fixture
def credly_with_org(monkeypatch):
    # unreachable host: any request would fail with a connection error, not the ValueError tested
    set_connection(
        monkeypatch,
        "credly_default",
        conn_type="credly",
        host="http://127.0.0.1:9/v1",
        password="tok-123456",
        extra={"organization_id": "org"},
    )


def test_prune_with_a_filter_fails_before_any_table(db_path, credly_with_org):
    op = CredlyBadgesToSqlOperator(
        task_id="t", table="loaded", destination_conn_id="wh", prune=True, filters={"state": "accepted"}
    )
    with pytest.raises(ValueError, match="unfiltered"):
        op.execute({})
    assert _tables(db_path) == []


def test_an_unknown_raw_json_type_fails_before_any_table(db_path, credly_with_org):
    op = CredlyBadgesToSqlOperator(
        task_id="t", table="loaded", destination_conn_id="wh", raw_json_type="text"
    )
    with pytest.raises(ValueError, match="raw_json_type must be one of jsonb, json, got 'text'"):
        op.execute({})
    assert _tables(db_path) == []
