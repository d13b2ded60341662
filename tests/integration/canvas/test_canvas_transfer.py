"""Canvas Credentials assertions into real DuckDB / PostgreSQL tables through the warehouse machinery."""

from __future__ import annotations

import json

import duckdb
import pytest

from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator
from airflow_provider_credly.transfers.canvas_credentials_to_sql import (
    CanvasCredentialsAssertionsToSqlOperator,
)

pytestmark = pytest.mark.integration

TOTAL = 2100


@pytest.fixture(scope="module")
def emulator():
    state = CanvasState.seeded(badge_classes=3, assertions=TOTAL, revoked_every=10, expired_every=15)
    with run_canvas_emulator(state) as emu:
        yield emu


@pytest.fixture
def canvas(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CANVAS_CREDENTIALS_DEFAULT", json.dumps(emulator.connection()))
    return emulator


class Boom(RuntimeError):
    pass


def make_op(canvas, **kwargs):
    base = {
        "task_id": "load",
        "table": "canvas_assertions",
        "issuer_id": canvas.state.issuer_id,
        "destination_conn_id": "duckdb_warehouse",
        "page_size": 300,
        "batch_rows": 600,
        "checkpoint_key": "canvas-test",
    }
    return CanvasCredentialsAssertionsToSqlOperator(**{**base, **kwargs})


def test_issuer_assertions_into_duckdb_with_revoked_and_expired_then_resume(canvas, duckdb_conn):
    class Failing(CanvasCredentialsAssertionsToSqlOperator):
        def after_batch_committed(self, checkpoint):
            if checkpoint.pages >= 2:
                raise Boom("worker lost")

    first = Failing(
        task_id="load",
        table="canvas_assertions",
        issuer_id=canvas.state.issuer_id,
        destination_conn_id="duckdb_warehouse",
        page_size=300,
        batch_rows=600,
        checkpoint_key="canvas-test",
        include_child_tables=True,
    )
    with pytest.raises(Boom):
        first.execute(context={})
    with duckdb.connect(str(duckdb_conn)) as db:
        assert db.execute("select count(*) from canvas_assertions").fetchone()[0] == 600

    result = make_op(canvas, include_child_tables=True).execute(context={})
    assert result["resumed"] is True
    assert result["rows"] == TOTAL
    assert result["pages"] == 7
    with duckdb.connect(str(duckdb_conn)) as db:
        count, distinct, revoked, expired = db.execute(
            "select count(*), count(distinct entity_id), count(*) filter (where revoked), "
            "count(*) filter (where expires < now()) from canvas_assertions"
        ).fetchone()
        row = db.execute(
            "select recipient_plaintext_identity, recipient_hashed, issued_on, raw->>'entityId' = entity_id "
            "from canvas_assertions order by entity_id limit 1"
        ).fetchone()
    assert count == distinct == TOTAL
    state = canvas.state
    assert revoked == state.count_assertions(revoked=True) > 0
    assert expired == sum(1 for a in state.assertions.values() if a.get("expires")) > 0
    assert row[0].endswith("@example.edu")
    assert row[1] is True
    assert row[2] is not None
    assert row[3] is True

    again = make_op(canvas, checkpoint_key="canvas-test-2").execute(
        context={}
    )  # rerun: upsert, no duplicates
    assert again["rows"] == TOTAL
    with duckdb.connect(str(duckdb_conn)) as db:
        assert db.execute("select count(*) from canvas_assertions").fetchone()[0] == TOTAL


def test_badge_class_without_revoked_into_duckdb(canvas, duckdb_conn):
    bc = canvas.state.badge_class_ids[1]
    result = make_op(
        canvas,
        issuer_id=None,
        badge_class_id=bc,
        include_revoked=False,
        include_expired=False,
        checkpoint_key="bc",
    ).execute(context={})
    expected = [a for a in canvas.state.iter_assertions(badgeclass=bc, revoked=False) if not a.get("expires")]
    assert result["rows"] == len(expected)
    with duckdb.connect(str(duckdb_conn)) as db:
        ids = {r[0] for r in db.execute("select entity_id from canvas_assertions").fetchall()}
    assert ids == {a["entityId"] for a in expected}


def test_invalid_settings_fail_before_any_request(canvas, duckdb_conn):
    before = sum(canvas.state.stats.values())
    with pytest.raises(ValueError, match="exactly one"):
        make_op(canvas, badge_class_id="x").execute(context={})
    with pytest.raises(ValueError, match="page_size"):
        make_op(canvas, page_size=501).execute(context={})
    assert sum(canvas.state.stats.values()) == before  # no request reached the API


@pytest.mark.postgres
def test_into_postgres(canvas, postgres_conn):
    import psycopg

    result = make_op(canvas, destination_conn_id="postgres_warehouse", checkpoint_key="pg").execute(
        context={}
    )
    assert result["rows"] == TOTAL
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=test") as conn:
        count, revoked = conn.execute(
            f'select count(distinct entity_id), count(*) filter (where revoked) from "{postgres_conn}".canvas_assertions'
        ).fetchone()
    assert count == TOTAL
    assert revoked == canvas.state.count_assertions(revoked=True)
