"""The transfer operator's steps against the emulator over HTTP: the bootstrap decision reaches
``build_request`` as an argument, and the tables are created once per load."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator
from airflow_provider_credly.warehouse.writers import SqlWriter

CONTEXT = {"data_interval_start": datetime(2026, 3, 2, 5, tzinfo=UTC)}


def test_bootstrap_is_an_argument_and_tables_are_created_once(credly_conn, duckdb_conn, monkeypatch):
    ensured: list[str] = []
    ensure = SqlWriter.ensure_tables

    def count_ensure(self, extra_ddl=()):
        ensured.append(str(self.table))
        return ensure(self, extra_ddl)

    monkeypatch.setattr(SqlWriter, "ensure_tables", count_ensure)
    bootstraps: list[bool] = []
    build = CredlyBadgesToSqlOperator.build_request

    def record_build(self, context, *, bootstrap=False):
        bootstraps.append(bootstrap)
        return build(self, context, bootstrap=bootstrap)

    monkeypatch.setattr(CredlyBadgesToSqlOperator, "build_request", record_build)
    op = CredlyBadgesToSqlOperator(
        task_id="load", table="credly_badges", destination_conn_id="duckdb_warehouse", mode="incremental"
    )

    first = op.execute(CONTEXT)  # no checkpoint yet: a bootstrap load of every badge
    assert bootstraps == [False, True]  # the settings check, then the request the checkpoint decided
    assert ensured == ["credly_badges"]
    assert (first["bootstrap"], first["watermark"], first["rows"]) == (True, None, 120)
    assert not hasattr(op, "bootstrap_run")

    bootstraps.clear()
    ensured.clear()
    second = op.execute(CONTEXT)  # the bootstrap finished: the configured incremental load
    assert bootstraps == [False, False]
    assert ensured == ["credly_badges"]
    assert (second["bootstrap"], second["watermark"]) == (None, "2026-03-01")
    with duckdb.connect(str(duckdb_conn)) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM credly_badges").fetchone() == (120, 120)
