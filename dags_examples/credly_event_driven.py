"""Event-driven: run when badges are issued or accepted, without a schedule (Airflow 3 ``AssetWatcher``).

The triggerer runs :class:`CredlyEventTrigger`, which polls the organization's events and yields one
TriggerEvent per new event; each becomes an asset event of ``credly_badge_events`` and the scheduler creates
a run of this DAG (events that arrive close together can share one run). Delivery is at least once: after a
triggerer restart the events since the last stored watermark come again, so the task upserts by event id and
a redelivered event leaves the table as it was.

Settings (environment): ``CREDLY_CONN_ID`` (default ``credly_default``), ``CREDLY_WAREHOUSE_CONN_ID``
(default ``duckdb_warehouse``), ``CREDLY_EVENT_TYPES`` (default ``badge.created,badge.state.changed``),
``CREDLY_EVENTS_POLL_INTERVAL`` seconds (default 60). They are read when the file is parsed: the trigger's
arguments must stay the same from one parse to the next (a change makes a new trigger).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import closing
from typing import Any

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_credly.hooks.sql import check_table_name, get_db_hook
from airflow_provider_credly.triggers.events import CredlyEventTrigger

CREDLY_CONN_ID = os.environ.get("CREDLY_CONN_ID", "credly_default")
WAREHOUSE_CONN_ID = os.environ.get("CREDLY_WAREHOUSE_CONN_ID", "duckdb_warehouse")
EVENT_TYPES = os.environ.get("CREDLY_EVENT_TYPES", "badge.created,badge.state.changed").split(",")
POLL_INTERVAL = float(os.environ.get("CREDLY_EVENTS_POLL_INTERVAL", "60"))
TABLE = "credly_badge_event_log"
# DuckDB takes one writing process per file (see credly_workforce_and_events_to_duckdb).
POOL: dict[str, Any] = {"pool": "duckdb_warehouse"} if "duckdb" in WAREHOUSE_CONN_ID else {}

COLUMNS = ("event_id", "event_type", "occurred_at", "badge_id", "badge_state", "badge_template_id")

CREDLY_BADGE_EVENTS = Asset(
    "credly_badge_events",
    watchers=[
        AssetWatcher(
            name="credly_badge_events_watcher",
            trigger=CredlyEventTrigger(
                credly_conn_id=CREDLY_CONN_ID, event_types=EVENT_TYPES, poll_interval=POLL_INTERVAL
            ),
        )
    ],
)


def event_rows(asset_events: Iterable[Any]) -> list[tuple[Any, ...]]:
    """One row per distinct event id from the triggering asset events (their ``extra["payload"]``)."""
    rows: dict[str, tuple[Any, ...]] = {}
    for asset_event in asset_events:
        extra = asset_event.get("extra") if isinstance(asset_event, Mapping) else asset_event.extra
        payload = (extra or {}).get("payload")
        if isinstance(payload, Mapping) and payload.get("event_id"):
            rows[str(payload["event_id"])] = tuple(payload.get(c) for c in COLUMNS)
    return list(rows.values())


def upsert_event_rows(conn_id: str, table: str, rows: list[tuple[Any, ...]]) -> int:
    """Insert or update ``rows`` keyed by ``event_id`` (idempotent: a redelivered event changes nothing)."""
    check_table_name(table)
    hook = get_db_hook(conn_id)
    hook.run(
        f"CREATE TABLE IF NOT EXISTS {table} (event_id VARCHAR(64) PRIMARY KEY, event_type VARCHAR(64), "
        "occurred_at VARCHAR(40), badge_id VARCHAR(64), badge_state VARCHAR(32), badge_template_id VARCHAR(64))"
    )
    if not rows:
        return 0
    marks = ", ".join([hook.placeholder] * len(COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    sql = (
        f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks}) "
        f"ON CONFLICT (event_id) DO UPDATE SET {updates}"
    )
    with closing(hook.get_conn()) as conn:
        cursor = conn.cursor()
        cursor.executemany(sql, rows)
        conn.commit()
    return len(rows)


@dag(
    dag_id="credly_event_driven",
    schedule=[CREDLY_BADGE_EVENTS],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["credly", "example", "events"],
)
def credly_event_driven() -> None:
    @task(**POOL)  # type: ignore[untyped-decorator]
    def record_events(triggering_asset_events: Any = None) -> dict[str, int]:
        # a manual run has no triggering events: it only makes sure the table exists
        asset_events = triggering_asset_events[CREDLY_BADGE_EVENTS] if triggering_asset_events else []
        rows = event_rows(asset_events)
        written = upsert_event_rows(WAREHOUSE_CONN_ID, TABLE, rows)
        print(f"{TABLE}: {written} event(s) upserted")
        return {"events": written}

    record_events()


credly_event_driven_dag = credly_event_driven()
