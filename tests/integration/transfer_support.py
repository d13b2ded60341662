"""Shared pieces of the transfer integration tests: an emulator-backed Credly connection, running the
transfer DAGs, and comparing warehouse tables with the emulator's state."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from airflow_provider_credly.client.filters import parse_filter
from airflow_provider_credly.testing.emulator import EmulatorState, render, run_emulator
from airflow_provider_credly.testing.emulator.filters import compile_badge_filter
from airflow_provider_credly.warehouse.schema import BADGES, extract_row
from tests.conftest import POSTGRES_DSN, connect_credly
from tests.helpers import load_module, run_dag, task_states  # noqa: F401  (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[2]

N_BADGES = 20_000
PAGE = 500

#: a slice's ``(created_at_min, created_at_max)``, ``None`` where open
Bounds = tuple[str | None, str | None]


def load_dag_module(name: str) -> Any:
    """Import a DAG file from tests/dags by module name (its fileloc stays inside the dags folder)."""
    path = ROOT / "tests" / "dags" / f"{name}.py"
    return load_module(path, f"credly_test_dags_{name}")


@pytest.fixture(name="emulator")
def emulator_fixture(monkeypatch: pytest.MonkeyPatch):
    """An emulator with 20,000 badges (500 per cursor page) behind connection ``credly_default``."""
    state = EmulatorState(seed=7, badges=N_BADGES, employees=120, hv_page_size=PAGE)
    emu = run_emulator(state)
    connect_credly(monkeypatch, emu, backoff_max=0.05)
    try:
        yield emu
    finally:
        emu.stop()


def expected_badges(state: EmulatorState, badge_format: str = "default") -> dict[str, dict[str, Any]]:
    """What the high-volume cursor lists now (in ``badge_format``), by id."""
    draw = render.badge_minimal if badge_format == "minimal" else render.badge_hv_default
    with state.lock:
        return {state.store.ids[r]: draw(state, r) for r in state.store.order}


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def assert_table_matches(rows: list[tuple[Any, ...]], expected: dict[str, dict[str, Any]]) -> None:
    """``rows`` (the BADGES columns in order) hold exactly ``expected``: same ids, typed values and raw JSON."""
    names = [c.name for c in BADGES.columns]
    got = {row[0]: row for row in rows}
    assert len(got) == len(rows), "duplicate ids in the table"
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    assert not missing, f"{len(missing)} ids missing"
    assert not extra, f"{len(extra)} unexpected ids"
    mismatches = []
    for badge_id, doc in expected.items():
        want = [_norm(v) for v in extract_row(BADGES, doc)]
        have = [_norm(v) for v in got[badge_id]]
        if want != have:
            diff = {n: (w, h) for n, w, h in zip(names, want, have, strict=True) if w != h}
            mismatches.append((badge_id, diff))
    assert not mismatches, f"{len(mismatches)} rows differ, e.g. {mismatches[:2]}"


def badge_select() -> str:
    """SELECT list of the badge data columns (raw JSON as text)."""
    return ", ".join("CAST(raw AS VARCHAR)" if c.name == "raw" else c.name for c in BADGES.columns)


def change_some_badges(state: EmulatorState) -> dict[str, str]:
    """Revoke one badge, replace another, issue two new ones; returns the ids by role."""
    ids = [state.store.ids[r] for r in list(state.store.order)[:50]]
    live = [i for i in ids if state.get_badge(i)["state"] in ("accepted", "pending")]
    revoked = live[0]
    state.revoke_badge(revoked, reason="Test revocation")
    old = live[1]
    new = state.replace_badge(
        old, badge_template_id=state.templates[0].id, issued_at="2026-11-20 10:00:00 +0000"
    )
    issued = [
        state.issue_badge(
            badge_template_id=state.templates[1].id,
            recipient_email=f"new{i}@example.com",
            issued_to_first_name="New",
            issued_to_last_name=f"Earner{i}",
            issued_at="2026-11-21 09:00:00 +0000",
        )["id"]
        for i in range(2)
    ]
    return {
        "revoked": revoked,
        "replaced": old,
        "replacement": new["id"],
        "new1": issued[0],
        "new2": issued[1],
    }


def slice_filter(bounds: Bounds) -> str | None:
    """The badge filter text of a slice (``None``: the whole search)."""
    since, until = bounds
    parts = [f"{k}::{v}" for k, v in (("created_at_min", since), ("created_at_max", until)) if v is not None]
    return "|".join(parts) or None


def cursor_requests_by_slice(emulator: Any) -> dict[Bounds, int]:
    """High-volume cursor requests the emulator served so far, by slice (the created_at bounds of the
    cursor's filter; ``(None, None)``: the unfiltered cursor)."""
    counts: dict[Bounds, int] = {}
    for text, n in emulator.state.stats()["cursor_by_filter"].items():
        flt = parse_filter(text) if text else {}
        bounds = (flt.get("created_at_min"), flt.get("created_at_max"))
        counts[bounds] = counts.get(bounds, 0) + n
    return counts


def slice_badge_ids(state: EmulatorState, bounds: Bounds) -> list[str]:
    """The ids of a slice in the order its high-volume cursor serves them (``(created_at, id)``)."""
    flt = compile_badge_filter(state.store, slice_filter(bounds), state.org_id)
    rows, _ = state.high_volume_page(flt, None, len(state.store.ids) + 1)  # all of them
    return [state.store.ids[r] for r in rows]


def as_utc(value: Any) -> Any:
    """A database's timestamp as an aware UTC datetime (a naive one holds UTC); other values as they are."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


class Warehouse:
    """Reads the destination of one test (DuckDB file or PostgreSQL schema)."""

    def __init__(self, conn_id: str, target: Any, kind: str) -> None:
        self.conn_id, self.target, self.kind = conn_id, target, kind

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "duckdb":
            with duckdb.connect(str(self.target), read_only=True) as con:
                return con.execute(sql).fetchall()
        with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={self.target}") as conn:
            return conn.execute(sql.replace("VARCHAR", "TEXT")).fetchall()

    def rows(self) -> list[tuple[Any, ...]]:
        return self.query(f"SELECT {badge_select()} FROM credly_badges")

    def checkpoints(self) -> dict[str, tuple[Any, ...]]:
        rows = self.query(
            "SELECT transfer_key, status, pages, rows, next_url FROM credly_transfer_checkpoints"
        )
        return {r[0]: r[1:] for r in rows}

    def load_stamps(self) -> dict[str, str]:
        return dict(self.query("SELECT id, CAST(_loaded_at AS VARCHAR) FROM credly_badges"))
