"""CredlyBadgesToSqlOperator(parallel_cursors=4) over real HTTP to the emulator, into real DuckDB and
PostgreSQL: exact loads, a kill mid-load resumed slice by slice (cursor requests counted per slice by the
emulator), a 429 storm, and an incremental load after revoke/replace/new badges."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator
from tests.integration.transfer_support import (
    N_BADGES,
    PAGE,
    Warehouse,
    assert_table_matches,
    change_some_badges,
    cursor_requests_by_slice,
    emulator_fixture,  # noqa: F401  (the ``emulator`` fixture)
    expected_badges,
    slice_filter,
)

pytestmark = [pytest.mark.integration]

KEY = "parallel:credly_badges"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request):
    if request.param == "duckdb":
        return Warehouse("duckdb_warehouse", request.getfixturevalue("duckdb_conn"), "duckdb")
    return Warehouse("postgres_warehouse", request.getfixturevalue("postgres_conn"), "postgres")


def _op(warehouse: Warehouse, cls: type[CredlyBadgesToSqlOperator] = CredlyBadgesToSqlOperator, **kwargs):
    settings = {
        "task_id": "load",
        "table": "credly_badges",
        "destination_conn_id": warehouse.conn_id,
        "badge_format": "minimal",
        "parallel_cursors": 4,
        "batch_rows": 2000,
        "checkpoint_key": KEY,
        **kwargs,
    }
    return cls(**settings)


def test_four_cursors_load_every_badge_once(emulator, warehouse):
    result = _op(warehouse, prune=True).execute({})
    assert result["parallel_cursors"] == 4
    assert result["slices"] == 8  # 20,000 badges: 2 slices per cursor
    assert result["rows"] == N_BADGES
    assert result["planning_probes"] >= result["slices"] - 1
    rows = warehouse.rows()
    assert len(rows) == N_BADGES
    assert_table_matches(rows, expected_badges(emulator.state, "minimal"))
    # every slice was read by its own cursor, each page once (no faults, so no retry)
    per_slice = cursor_requests_by_slice(emulator)
    assert per_slice.pop((None, None)) == 1  # the planner's page-size probe: the whole cursor's first page
    assert len(per_slice) == result["slices"]
    assert sum(per_slice.values()) == result["pages"]
    # a finished load keeps only its own checkpoint: the slices' went with it
    assert warehouse.checkpoints() == {KEY: ("done", result["pages"], N_BADGES, None)}
    assert warehouse.query("SELECT COUNT(DISTINCT _load_id) FROM credly_badges") == [(1,)]


class KilledOnce(CredlyBadgesToSqlOperator):
    """Raises after the commit that passes ``kill_after`` pages, once (as a killed worker's task would)."""

    kill_after = 24  # of 40 pages: the first slices (5 pages each) are finished, later ones not
    killed: dict[str, Any] = {}

    def after_batch_committed(self, checkpoint):
        if checkpoint.pages >= self.kill_after and not self.killed:
            self.killed["pages"] = checkpoint.pages
            raise RuntimeError(f"injected kill after page {checkpoint.pages}")


def test_kill_mid_load_then_retry_resumes_every_slice(emulator, warehouse):
    KilledOnce.killed = {}
    with pytest.raises(RuntimeError, match="injected kill"):
        _op(warehouse, KilledOnce, prune=True).execute({})
    saved = warehouse.checkpoints()
    parent = saved.pop(KEY)
    assert parent[0] == "running" and parent[1] == KilledOnce.killed["pages"]
    slices = {k: v for k, v in saved.items() if k.startswith(f"{KEY}/slice-")}
    finished = {k for k, v in slices.items() if v[0] == "fetched"}
    unfinished = {k for k, v in slices.items() if v[0] == "running"}
    assert finished, "no slice had finished when the task was killed"
    assert sum(v[1] for v in slices.values()) == parent[1]  # the slices' pages add up to the load's
    (count,) = warehouse.query("SELECT COUNT(*) FROM credly_badges")[0]
    assert count == parent[2]  # the committed rows match the committed checkpoints
    (fingerprint,) = warehouse.query(
        f"SELECT fingerprint FROM credly_transfer_checkpoints WHERE transfer_key = '{KEY}'"
    )[0]
    plan = [tuple(b) for b in json.loads(fingerprint.partition("\nslices=")[2])]  # the plan is in it
    assert len(plan) >= 4
    before = cursor_requests_by_slice(emulator)

    result = _op(warehouse, KilledOnce, prune=True).execute({})  # the retry
    assert result["resumed"] is True
    assert result["slices_skipped"] == len(finished)
    after = cursor_requests_by_slice(emulator)
    for i, bounds in enumerate(plan):
        key = f"{KEY}/slice-{i}"
        pages = max(1, -(-_badges_in(emulator, bounds) // PAGE))
        again = after.get(bounds, 0) - before.get(bounds, 0)
        if key in finished:
            assert again == 0, f"finished slice {i} {bounds} was fetched again"
        else:  # continued after its last committed page: the remaining pages, each once
            committed = slices[key][1] if key in slices else 0
            assert again == pages - committed, (i, bounds, committed)
    assert unfinished or len(slices) < len(plan)  # something was left to resume
    rows = warehouse.rows()
    assert_table_matches(rows, expected_badges(emulator.state, "minimal"))
    assert warehouse.query("SELECT COUNT(DISTINCT _load_id) FROM credly_badges") == [(1,)]
    assert warehouse.checkpoints() == {KEY: ("done", result["pages"], N_BADGES, None)}


def _badges_in(emulator, bounds: tuple[str | None, str | None]) -> int:
    """How many badges a slice holds (the emulator's own count)."""
    return emulator.state.list_badges(slice_filter(bounds), None, 1, 1)[1]


def test_429_storm_finishes_exact(emulator, warehouse):
    # a bucket of two requests: three of the four cursors asking within 1/30 s get a 429, however slow the
    # machine (a burst of 4 let a slow run through unthrottled), with 5xx and dropped connections on top
    emulator.set_faults(rate_limit=60, rate_limit_burst=2, error_rate=0.03, drop_rate=0.03, seed=11)
    result = _op(warehouse, badge_format="default").execute({})
    emulator.clear_faults()
    assert result["throttled"] > 0  # the storm reached the shared limiter
    assert emulator.state.stats()["rate_limited"] > 0
    assert_table_matches(warehouse.rows(), expected_badges(emulator.state))


def test_incremental_with_four_cursors_updates_exactly_the_changed_rows(emulator, warehouse):
    first = _op(warehouse, mode="incremental", min_slice_badges=1).execute(
        {"data_interval_start": datetime.now(UTC)}
    )
    assert first["bootstrap"] is True and first["rows"] == N_BADGES
    before = warehouse.load_stamps()
    changed = change_some_badges(emulator.state)
    second = _op(warehouse, mode="incremental", min_slice_badges=1).execute(
        {"data_interval_start": datetime.now(UTC)}
    )
    assert second["watermark"] is not None and second["slices"] >= 2  # the changed window, sliced
    after = warehouse.load_stamps()
    touched = {i for i in after if after[i] != before.get(i)}
    assert touched == {changed["revoked"], changed["replacement"], changed["new1"], changed["new2"]}
    rows = warehouse.rows()
    assert {r[0]: r[1] for r in rows}[changed["revoked"]] == "revoked"
    assert_table_matches(
        [r for r in rows if r[0] != changed["replaced"]], expected_badges(emulator.state, "minimal")
    )


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize("cursors", [1, 4])
def test_row_group_commits_under_faults_and_a_kill_inside_a_page_end_exact(
    emulator, warehouse, monkeypatch, cursors
):
    """The default ``batch_rows`` into DuckDB: commits end on row groups (1,250 rows here, the load's first
    after half of one, so most fall inside a page of 500), under 5xx, dropped connections and 429s, killed
    after the commit that passes page 6; the retry refetches the pages the commits fell in, replaces their
    keys and ends exact."""
    import airflow_provider_credly.warehouse.writers as writers

    monkeypatch.setattr(writers, "DUCKDB_ROW_GROUP_ROWS", 1_250)
    commits: list[int] = []
    committed = {"rows": 0}
    commit = writers.DuckDBWriter.commit

    def counting_commit(self):  # the table's rows as each commit leaves them (the writer's own connection)
        commit(self)
        committed["rows"] = self.count()

    monkeypatch.setattr(writers.DuckDBWriter, "commit", counting_commit)

    class Killed(CredlyBadgesToSqlOperator):
        def after_batch_committed(self, checkpoint):
            commits.append(committed["rows"])
            if checkpoint.pages >= 6 and len(commits) < 100:
                commits.append(-1)  # the kill, once
                raise RuntimeError(f"injected kill after page {checkpoint.pages}")

    emulator.set_faults(error_rate=0.05, drop_rate=0.05, rate_limit=80, rate_limit_burst=4, seed=5)
    settings = {"batch_rows": None, "parallel_cursors": cursors, "prune": True}
    with pytest.raises(RuntimeError, match="injected kill"):
        _op(warehouse, Killed, **settings).execute({})
    killed_at = commits.index(-1)
    # every commit of the first attempt ended a row group (a sliced load's first commit also waits for its
    # plan, so it may come groups later); the table holds rows ahead of the checkpoint
    first = commits[:killed_at]
    assert first and all(c % 1_250 == 625 for c in first) and first == sorted(set(first)), first
    parent = warehouse.checkpoints()[KEY]
    assert parent[0] == "running" and parent[2] <= commits[killed_at - 1]
    if cursors == 1:  # commits at 625, 1,875 and 3,125 rows: the third, inside page 7, is the one killed
        assert (commits[killed_at - 1], parent[1], parent[2]) == (3_125, 6, 3_000)

    commits.extend([0] * 100)  # no second kill
    result = _op(warehouse, Killed, **settings).execute({})
    emulator.clear_faults()
    assert result["resumed"] is True and result["rows"] == N_BADGES
    rows = warehouse.rows()
    assert len(rows) == len({r[0] for r in rows}) == N_BADGES
    assert_table_matches(rows, expected_badges(emulator.state, "minimal"))
    assert warehouse.query("SELECT COUNT(DISTINCT _load_id) FROM credly_badges") == [(1,)]
    assert warehouse.checkpoints() == {KEY: ("done", result["pages"], N_BADGES, None)}


def test_six_cursors_on_large_pages_keep_six_requests_out(monkeypatch, warehouse):
    """60,000 badges in pages of 2,000 and 150 ms per request: the emulator sees six cursor requests at
    once, though six pages are more than a default batch of records (the bound held them to five)."""
    from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
    from tests.conftest import connect_credly

    emu = run_emulator(EmulatorState(seed=3, badges=60_000, employees=10, hv_page_size=2_000))
    try:
        connect_credly(monkeypatch, emu, backoff_max=0.05)
        emu.set_faults(latency_ms=150)
        result = _op(warehouse, parallel_cursors=6, batch_rows=None).execute({})
        assert result["rows"] == 60_000 and result["slices"] >= 6
        assert len({r[0] for r in warehouse.rows()}) == 60_000
        assert emu.stats()["peak_in_flight"]["badges.high_volume"] == 6
    finally:
        emu.stop()
