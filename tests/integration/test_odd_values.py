"""Odd-but-valid values over real loopback HTTP: the emulator's ``odd_values_rate`` fault (timestamps
without an offset, with a space, 6 fractional digits or another offset; a JSON number in a text column;
names with backslashes, tabs, newlines, ``\\N``, ``\\.`` and non-BMP letters, as UTF-8 or ``\\u`` escapes)
loaded by ``CredlyBadgesToSqlOperator`` into real PostgreSQL and DuckDB: the load is exact and every odd
value lands as what it means, whatever the warehouse session's time zone.

The warehouse sessions run in Asia/Kathmandu (+05:45), not UTC: a value that carries no offset must still
land as the UTC instant Credly means (``parse_timestamp``'s reading), and an offset must never depend on
the session. PostgreSQL batches holding a value binary ``COPY`` cannot take go as text ``COPY``; the others
as binary (both are checked to happen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.hooks.sql import get_db_hook
from airflow_provider_credly.testing.emulator import EmulatorState, RunningEmulator, run_emulator
from airflow_provider_credly.testing.emulator.faults import ODD_VALUE_KINDS
from airflow_provider_credly.testing.emulator.render import ODD_TEXT
from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator
from airflow_provider_credly.warehouse import BADGES, PostgresWriter, writers
from airflow_provider_credly.warehouse.records import PageRecords
from airflow_provider_credly.warehouse.writers import LoadMeta
from tests.conftest import connect_credly, set_connection, set_postgres_warehouse
from tests.integration.transfer_support import (
    Warehouse,
    as_utc,
    assert_table_matches,
    badge_select,
    expected_badges,
)

pytestmark = [pytest.mark.integration]

N_BADGES = 3000
PAGE = 25  # small pages, one per batch: most batches hold no text-only value, some do
ODD_RATE = 0.05
SESSION_TZ = "Asia/Kathmandu"
TIMESTAMP_KINDS = {"naive", "space", "micros", "utc_offset", "plus_two", "minus_nine_thirty"}
#: the shapes binary COPY cannot take (no offset; a number for a text column): their batches go as text
TEXT_ONLY_KINDS = {"naive", "number"}
TIMESTAMPS = [c.name for c in BADGES.columns if c.kind == "timestamp"]
COLUMNS = [c.name for c in BADGES.columns]
#: per ``PostgresWriter.write`` call: the batch's ids and the formats of its COPY statements
CopyLog = list[tuple[list[str], list[str]]]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    state = EmulatorState(seed=13, badges=N_BADGES, employees=30, hv_page_size=PAGE)
    with run_emulator(state, odd_values_rate=ODD_RATE, seed=21) as emu:
        connect_credly(monkeypatch, emu, backoff_max=0.05)
        yield emu


class OddWarehouse(Warehouse):
    """The destination of one test: a DuckDB file or a PostgreSQL schema, its session in ``SESSION_TZ``."""

    def session_time_zone(self) -> str:
        """The time zone of a session the connection opens (what the writer's session reads values in)."""
        conn = get_db_hook(self.conn_id).get_conn()
        try:
            cur = conn if self.kind == "duckdb" else conn.cursor()  # DuckDB: the connection's own session
            cur.execute("SELECT current_setting('TimeZone')")
            return str(cur.fetchone()[0])
        finally:
            conn.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> OddWarehouse:
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        extra = {"settings": {"TimeZone": SESSION_TZ}}
        set_connection(monkeypatch, "duckdb_warehouse", conn_type="duckdb", host=str(path), extra=extra)
        return OddWarehouse("duckdb_warehouse", path, "duckdb")
    schema: str = request.getfixturevalue("postgres_conn")  # a fresh schema, dropped afterwards
    set_postgres_warehouse(monkeypatch, schema, f"-c TimeZone={SESSION_TZ}")
    return OddWarehouse("postgres_warehouse", schema, "postgres")


@pytest.fixture
def copy_log(monkeypatch: pytest.MonkeyPatch) -> CopyLog:
    """Per ``PostgresWriter.write`` call: the batch's ids and the formats of the COPY statements it ran."""
    log: CopyLog = []
    write, copy = PostgresWriter.write, psycopg.Cursor.copy

    def spy_write(self: PostgresWriter, chunks: Sequence[PageRecords], meta: LoadMeta) -> int:
        log.append(([key for chunk in chunks for key in chunk.keys], []))
        return write(self, chunks, meta)

    def spy_copy(self: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        if log:
            log[-1][1].append("binary" if "FORMAT BINARY" in str(statement) else "text")
        return copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(PostgresWriter, "write", spy_write)
    monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)
    return log


@pytest.mark.parametrize("badge_format", ["minimal", "default"])
def test_odd_values_land_as_what_they_mean(
    emulator: RunningEmulator, warehouse: OddWarehouse, copy_log: CopyLog, badge_format: str
) -> None:
    assert warehouse.session_time_zone() == SESSION_TZ  # the session really is not in UTC
    state = emulator.state
    odd = state.odd_values
    assert odd is not None
    kinds = {state.store.ids[r]: odd.kind(r) for r in state.store.order}
    seen = {k for k in kinds.values() if k}
    assert seen == set(ODD_VALUE_KINDS)  # every shape is in the load
    assert 0.03 < sum(1 for k in kinds.values() if k) / len(kinds) < 0.07

    op = CredlyBadgesToSqlOperator(
        task_id="load",
        table="credly_badges",
        destination_conn_id=warehouse.conn_id,
        badge_format=badge_format,
        batch_rows=PAGE,
        checkpoint_key="odd-values",
    )
    result = op.execute({})

    # exact: every badge once
    assert result["rows"] == N_BADGES
    rows = warehouse.query(f"SELECT {badge_select()} FROM credly_badges")
    assert len(rows) == N_BADGES
    assert warehouse.query("SELECT COUNT(DISTINCT id) FROM credly_badges") == [(N_BADGES,)]
    assert warehouse.query("SELECT status, rows FROM credly_transfer_checkpoints") == [("done", N_BADGES)]

    # every column as the product reads what the emulator sent (raw: the same JSON values)
    sent = expected_badges(state, badge_format)
    assert_table_matches(rows, sent)
    # ... and as what it means: the emulator's own record without the odd shapes
    emulator.clear_faults()
    assert state.odd_values is None
    clean = expected_badges(state, badge_format)
    got = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows}
    checked = dict.fromkeys(ODD_VALUE_KINDS, 0)
    numbers = []
    for badge_id, kind in kinds.items():
        if kind is None:
            continue
        have, was, means = got[badge_id], sent[badge_id], clean[badge_id]
        raw = json.loads(have["raw"])
        if kind in TIMESTAMP_KINDS:
            for name in TIMESTAMPS:
                if means.get(name) is None:
                    continue
                assert was[name] != means[name]  # really sent in another shape
                # the same instant as the emulator's record, in the typed column and in raw
                assert as_utc(have[name]) == parse_timestamp(means[name]), (kind, name, was[name])
                assert raw[name] == was[name]
                checked[kind] += 1
        elif kind == "number":
            number = was["issuer_earner_id"]
            assert type(number) is int
            assert have["issuer_earner_id"] == str(number)  # the number's JSON text, digit for digit
            assert raw["issuer_earner_id"] == number
            numbers.append(number)
            checked[kind] += 1
        else:  # stress / escaped: byte for byte in the typed columns and in raw
            for name in ("issued_to", "issued_to_last_name"):
                assert have[name] == means[name] + ODD_TEXT
                assert raw[name] == means[name] + ODD_TEXT
            checked[kind] += 1
    assert all(checked.values()), checked
    assert min(numbers) < 2**31 and max(numbers) > 2**64  # small ones and ones beyond 64 bits

    if warehouse.kind == "postgres":
        # per batch: its pages binary COPY takes in one binary COPY, then any page holding a value it cannot
        # take in one text COPY (the other odd shapes decode as binary values; their values are checked above)
        assert sum(len(ids) for ids, _ in copy_log) == N_BADGES
        for ids, formats in copy_log:
            assert formats in (["binary"], ["text"], ["binary", "text"]), formats
            needs_text = any(kinds[i] in TEXT_ONLY_KINDS for i in ids)
            assert ("text" in formats) == needs_text, [kinds[i] for i in ids if kinds[i]]
            if not any(kinds[i] for i in ids):
                assert formats == ["binary"]
        used = {f for _, formats in copy_log for f in formats}
        assert used == {"binary", "text"}


def test_pages_reach_the_database_as_the_utf8_bytes_sent(
    emulator: RunningEmulator, warehouse: OddWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a page with one name beyond Latin-1 (the emulator's Nguyễn, the odd non-BMP letters) held as a Python
    # str would be 2-4 bytes per character: the bulk writers get each page as the bytes Credly sent
    texts: list[Any] = []
    unique = writers.unique_records

    def spy(chunks: Sequence[PageRecords], key: str = "id") -> tuple[list[bytes], list[str]]:
        batch, keys = unique(chunks, key)
        texts.extend(batch)
        return batch, keys

    monkeypatch.setattr(writers, "unique_records", spy)
    op = CredlyBadgesToSqlOperator(
        task_id="load", table="credly_badges", destination_conn_id=warehouse.conn_id, checkpoint_key="utf8"
    )
    assert op.execute({})["rows"] == N_BADGES
    assert texts and all(type(t) is bytes for t in texts)
    assert sum(len(json.loads(t)) for t in texts) == N_BADGES
    beyond_latin1 = [t for t in texts if any(ord(c) > 0xFF for c in t.decode())]
    assert beyond_latin1  # such pages are in the load (a third of these 25-record pages)
