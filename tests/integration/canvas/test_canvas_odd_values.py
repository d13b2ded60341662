"""Odd-but-valid values from the Canvas Credentials emulator (its ``odd_values_rate`` fault: timestamps
without an offset, with a space, 6 fractional digits or another offset; a JSON number for the text
``narrative``, small and beyond 64 bits; a recipient name with backslashes, tabs, newlines, ``\\N``,
``\\.`` and non-BMP letters, sent as UTF-8 as Badgr does) loaded by
``CanvasCredentialsAssertionsToSqlOperator`` into real DuckDB and PostgreSQL whose sessions are not in UTC:
the load is exact and every value lands as what it means.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator
from airflow_provider_credly.testing.canvas.server import RunningCanvasEmulator
from airflow_provider_credly.testing.canvas.state import ODD_ASSERTION_TIMESTAMPS, odd_assertion
from airflow_provider_credly.testing.emulator.faults import ODD_VALUE_KINDS
from airflow_provider_credly.testing.emulator.render import ODD_TEXT
from airflow_provider_credly.transfers.canvas_credentials_to_sql import (
    CanvasCredentialsAssertionsToSqlOperator,
)
from tests.conftest import set_connection, set_postgres_warehouse
from tests.integration.transfer_support import Warehouse, as_utc

pytestmark = pytest.mark.integration

TOTAL = 900
ODD_RATE = 0.15  # about 15 assertions of each of the 9 shapes
SESSION_TZ = "Asia/Kathmandu"  # +05:45: a value without an offset must still land as UTC
#: typed column -> the assertion field it reads
TIMESTAMP_COLUMNS = {"issued_on": "issuedOn", "created_at": "createdAt", "expires": "expires"}


@pytest.fixture
def canvas(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCanvasEmulator]:
    state = CanvasState.seeded(badge_classes=2, assertions=TOTAL, revoked_every=10, expired_every=15)
    with run_canvas_emulator(state, odd_values_rate=ODD_RATE, seed=5) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_CANVAS_CREDENTIALS_DEFAULT", json.dumps(emu.connection()))
        yield emu


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Warehouse:
    """A DuckDB file or a PostgreSQL schema whose sessions run in SESSION_TZ."""
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        extra = {"settings": {"TimeZone": SESSION_TZ}}
        set_connection(monkeypatch, "duckdb_warehouse", conn_type="duckdb", host=str(path), extra=extra)
        return Warehouse("duckdb_warehouse", path, "duckdb")
    schema = request.getfixturevalue("postgres_conn")  # a fresh schema, dropped afterwards
    set_postgres_warehouse(monkeypatch, schema, f"-c TimeZone={SESSION_TZ}")
    return Warehouse("postgres_warehouse", schema, "postgres")


def test_odd_assertion_values_land_as_what_they_mean(
    canvas: RunningCanvasEmulator, warehouse: Warehouse
) -> None:
    state = canvas.state
    odd = canvas.server.faults.odd_values
    assert odd is not None
    seqs = {eid: state.sequence(eid) for eid in state.assertions}
    kinds = {eid: odd.kind(r) for eid, r in seqs.items()}
    assert {k for k in kinds.values() if k} == set(ODD_VALUE_KINDS)  # every shape is in the load

    result = CanvasCredentialsAssertionsToSqlOperator(
        task_id="load",
        table="canvas_assertions",
        issuer_id=state.issuer_id,
        destination_conn_id=warehouse.conn_id,
        page_size=100,
        batch_rows=200,
        checkpoint_key="canvas-odd",
    ).execute(context={})

    assert result["rows"] == TOTAL  # revoked and expired ones included
    rows = warehouse.query(
        "SELECT entity_id, issued_on, created_at, expires, narrative, recipient_plaintext_identity, "
        "CAST(raw AS VARCHAR) FROM canvas_assertions",
    )
    assert len(rows) == len({r[0] for r in rows}) == TOTAL
    checked = dict.fromkeys(ODD_VALUE_KINDS, 0)
    numbers = []
    for eid, issued_on, created_at, expires, narrative, identity, raw_text in rows:
        means, kind = state.assertions[eid], kinds[eid]
        sent = means if kind is None else odd_assertion(means, kind, seqs[eid])
        raw = json.loads(raw_text)
        typed = {"issued_on": issued_on, "created_at": created_at, "expires": expires}
        for column, field in TIMESTAMP_COLUMNS.items():
            assert raw[field] == sent[field]  # raw: what was sent
            # the typed column: the instant the emulator's own record means, whatever shape was sent
            want = parse_timestamp(means[field]) if means[field] else None
            assert as_utc(typed[column]) == want, (kind, field, sent[field])
        if kind in ("stress", "escaped"):
            assert (
                identity
                == raw["recipient"]["plaintextIdentity"]
                == means["recipient"]["plaintextIdentity"] + ODD_TEXT
            )
        else:
            assert identity == means["recipient"]["plaintextIdentity"]
        if kind == "number":
            assert type(sent["narrative"]) is int
            assert narrative == str(sent["narrative"])  # the number's JSON text, digit for digit
            assert raw["narrative"] == sent["narrative"]
            numbers.append(sent["narrative"])
        else:
            assert narrative == means["narrative"]
        if kind is not None:
            changed = kind in ("stress", "escaped", "number") or any(
                sent[f] != means[f] for f in ODD_ASSERTION_TIMESTAMPS if means[f]
            )
            assert changed, kind  # really sent in another shape
            checked[kind] += 1
    assert all(checked.values()), checked
    assert min(numbers) < 2**31 and max(numbers) > 2**64  # small ones and ones beyond 64 bits
