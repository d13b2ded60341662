"""Transfer operators: settings are validated before any HTTP request or database connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_credly.transfers.credly_to_sql import (
    CredlyBadgesToSqlOperator,
    incremental_since,
    warehouse_alias,
    warehouse_asset,
)
from tests.conftest import set_connection
from tests.helpers import load_module

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _connections(monkeypatch):
    # unreachable hosts: any request or connection attempt would fail loudly instead of a ValueError
    set_connection(
        monkeypatch,
        "credly_default",
        conn_type="credly",
        host="http://127.0.0.1:9/v1",
        password="tok-123456",
        extra={"organization_id": "org"},
    )
    set_connection(monkeypatch, "duckdb_default", conn_type="duckdb", host="/nonexistent/dir/x.duckdb")


def _op(**kwargs):
    return CredlyBadgesToSqlOperator(task_id="t", table=kwargs.pop("table", "credly_badges"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "bad name"}, "table"),
        ({"mode": "sometimes"}, "mode"),
        ({"badge_format": "huge"}, "badge_format"),
        ({"filters": {"colour": "red"}}, "unknown filter"),
        ({"filters": {"state": "shiny"}}, "state"),
        (
            {"mode": "incremental", "filters": {"updated_at_min": "2026-01-01"}, "bootstrap_full": False},
            "remove it",
        ),
        ({"since": "2026-13-01"}, "created_at_min"),
        ({"filters": {"created_at_min": "2026-01-01"}, "since": "2026-02-01"}, "both"),
        ({"page_queue_size": 0}, "page_queue_size"),
        ({"batch_rows": 0}, "batch_rows"),
        ({"watermark_filter": "expires_at_min"}, "watermark_filter"),
    ],
)
def test_bad_settings_fail_before_any_io(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _op(**kwargs).execute({})


def test_incremental_since_uses_the_interval_start_minus_overlap():
    start = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert incremental_since(start, timedelta(hours=1)) == "2026-11-22"
    assert incremental_since(start, timedelta(0)) == "2026-11-23"
    assert incremental_since(start, timedelta(days=1), watermark="2026-01-05") == "2026-01-05"
    assert incremental_since(None, timedelta(days=1)) is None


def _checkpoint(status, max_updated_at=None, **request):
    import json

    from airflow_provider_credly.warehouse.checkpoint import Checkpoint

    fingerprint = json.dumps(
        {
            "endpoint": "high_volume_issued_badge_search",
            "organization_id": "org",
            "table": "credly_badges",
            "badge_format": "default",
            "filter": None,
            "watermark": None,
            "watermark_filter": None,
            **request,
        },
        sort_keys=True,
    )
    # a sliced load's fingerprint carries its plan after the request
    return Checkpoint(
        "k",
        fingerprint + '\nslices=[["2024-01-01", null]]',
        "load-1",
        status,
        pages=2,
        max_updated_at=max_updated_at,
    )


def test_without_a_data_interval_the_bound_comes_from_the_last_load_of_the_same_request():
    from airflow_provider_credly.transfers.base import incremental_bound

    day = timedelta(days=1)
    done = _checkpoint("done", "2026-11-30T23:10:00.000Z")
    since, source = incremental_bound(None, day, previous=done)
    assert (since, "newest updated_at 2026-11-30T23:10:00.000Z" in source) == ("2026-11-29", True)
    # an interval or an explicit watermark still wins
    assert incremental_bound(datetime(2026, 3, 2, tzinfo=UTC), day, previous=done)[0] == "2026-03-01"
    assert incremental_bound(None, day, "2026-01-05", previous=done)[0] == "2026-01-05"
    # a completed load that wrote nothing, or an unfinished one: the bound that load used (so it resumes)
    empty = _checkpoint("done", None, watermark="2026-11-20", watermark_filter="updated_at_min")
    assert incremental_bound(None, day, previous=empty)[0] == "2026-11-20"
    running = _checkpoint("running", "2026-11-30T23:10:00.000Z", watermark="2026-11-25")
    assert incremental_bound(None, day, previous=running) == (
        "2026-11-25",
        "no data interval: the bound of the last unfinished load",
    )
    assert incremental_bound(None, day, previous=_checkpoint("running"))[0] is None
    assert incremental_bound(None, day)[0] is None


def test_previous_load_must_have_the_same_table_format_and_filters():
    op = _op(mode="incremental", filters={"state": "accepted"})
    same = _checkpoint(
        "done",
        "2026-11-30T23:10:00Z",
        filter="state::accepted|updated_at_min::2026-11-20",
        watermark="2026-11-20",
        watermark_filter="updated_at_min",
    )
    op.saved_checkpoint, op.checkpoint_read = same, True
    filters, since = op.build_filters({})
    assert op.previous_load({"state": "accepted"}) is same
    assert since == "2026-11-29" and filters == {"state": "accepted", "updated_at_min": "2026-11-29"}
    for other in (
        _checkpoint("done", "2026-11-30T23:10:00Z", filter="state::pending"),
        _checkpoint("done", "2026-11-30T23:10:00Z", filter="state::accepted", table="other"),
        _checkpoint("done", "2026-11-30T23:10:00Z", filter="state::accepted", badge_format="minimal"),
        _checkpoint("done", "2026-11-30T23:10:00Z", filter="state::accepted", organization_id="org-2"),
    ):
        op.saved_checkpoint = other
        assert op.previous_load({"state": "accepted"}) is None
        assert op.build_filters({})[1] is None  # not the same load: every badge, as without a checkpoint


def test_incremental_filters_carry_the_watermark_and_since_until():
    op = _op(mode="incremental", since="2024-01-01", until="2024-06-30", filters={"state": "accepted"})
    filters, since = op.build_filters({"data_interval_start": datetime(2026, 3, 2, 5, tzinfo=UTC)})
    assert since == "2026-03-01"
    assert filters == {
        "state": "accepted",
        "created_at_min": "2024-01-01",
        "created_at_max": "2024-06-30",
        "updated_at_min": "2026-03-01",
    }
    _, since = op.build_filters({}, bootstrap=True)
    assert since is None


def test_bootstrap_only_for_a_first_or_unfinished_bootstrap_load():
    from airflow_provider_credly.warehouse.checkpoint import Checkpoint

    op = _op(mode="incremental")
    assert op.wants_bootstrap(None) is True
    unfinished = Checkpoint("k", '{"bootstrap": true, "mode": "incremental"}', "l", status="running", pages=3)
    assert op.wants_bootstrap(unfinished) is True
    done = Checkpoint("k", '{"bootstrap": true}', "l", status="done")
    assert op.wants_bootstrap(done) is False
    assert _op(mode="full").wants_bootstrap(None) is False
    assert _op(mode="incremental", bootstrap_full=False).wants_bootstrap(None) is False


def test_default_outlet_is_the_warehouse_alias_read_no_connection():
    # "wh" is not defined: building the operator reads no connection (the alias names only its id)
    op = _op(destination_conn_id="wh", table="analytics.badges")
    assert op.outlets == [warehouse_alias("wh", "analytics.badges")]
    assert op.outlets[0].name == "credly-warehouse:wh/analytics.badges"
    assert _op(table="{{ params.table }}").outlets == []


def test_warehouse_asset_is_named_as_the_destination_provider_names_it(monkeypatch, tmp_path):
    set_connection(
        monkeypatch, "pg_wh", conn_type="postgres", host="db.example.com", schema="analytics", login="u"
    )
    pg = warehouse_asset("pg_wh", "credly_badges")
    assert pg.uri == pg.name == "postgres://db.example.com:5432/analytics/public/credly_badges"
    assert (
        warehouse_asset("pg_wh", "mart.badges").uri == "postgres://db.example.com:5432/analytics/mart/badges"
    )
    set_connection(monkeypatch, "duck_wh", conn_type="duckdb", host=str(tmp_path / "wh.duckdb"))
    duck = warehouse_asset("duck_wh", "credly_badges")
    assert duck.uri == duck.name == f"duckdb:{tmp_path}/wh.duckdb/main/credly_badges"


def test_the_backfill_example_plans_balanced_partitions():
    path = ROOT / "dags_examples" / "credly_badges_backfill_partitioned.py"
    source = path.read_text()
    assert "plan_badge_partitions(" in source and "date_partitions" not in source
    module = load_module(path, "credly_backfill_example")
    assert module.credly_badges_backfill_partitioned_dag.params["partitions"] >= 2
