"""Every DAG in dags_examples/ runs end to end with ``dag.test()``, in the demo's order, against one Credly
emulator and one Canvas Credentials emulator (real HTTP) into one real DuckDB file.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.helpers import load_module, task_states

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "dags_examples").glob("*.py"))


def _demo_order() -> list[str]:
    module = load_module(ROOT / "scripts" / "demo.py", "credly_demo_script")
    listed = [d for d in module.ORDER if d in EXAMPLES]
    return listed + [d for d in EXAMPLES if d not in listed]


ORDER = _demo_order()


@pytest.fixture(scope="module")
def environment(tmp_path_factory, airflow_db):
    from airflow_provider_credly.testing import EmulatorState, run_emulator
    from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator

    warehouse = tmp_path_factory.mktemp("examples") / "warehouse.duckdb"
    with (
        run_emulator(EmulatorState(seed=3, badges=800, employees=120)) as credly,
        run_canvas_emulator(CanvasState.seeded(assertions=60)) as canvas,
        pytest.MonkeyPatch.context() as mp,
    ):
        conn = {
            "conn_type": "credly",
            "host": credly.base_url,
            "password": credly.token,
            "extra": {"organization_id": credly.org_id, "backoff_base": 0.01},
        }
        mp.setenv("AIRFLOW_CONN_CREDLY_DEFAULT", json.dumps(conn))
        mp.setenv(
            "AIRFLOW_CONN_DUCKDB_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(warehouse)})
        )
        mp.setenv("AIRFLOW_CONN_CANVAS_CREDENTIALS_DEFAULT", json.dumps(canvas.connection()))
        mp.setenv("CREDLY_SENSOR_STATES", "pending,accepted")
        yield credly, warehouse


def _load(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags_examples" / f"{dag_id}.py"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def test_every_example_is_in_the_demo():
    assert set(ORDER) == set(EXAMPLES)
    assert ORDER[0] == "credly_org_overview"


@pytest.mark.parametrize("dag_id", ORDER)
def test_example_dag_runs_end_to_end(environment, dag_id):
    credly, warehouse = environment
    dag_run = _load(dag_id).test()
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states and all(s == "success" for s in states.values()), states
    if dag_id == "credly_badges_hourly_to_duckdb":
        with duckdb.connect(str(warehouse), read_only=True) as con:
            ids = {r[0] for r in con.execute("select id from credly_badges").fetchall()}
        assert len(ids) == credly.state.badges_count()
    if dag_id == "credly_workforce_and_events_to_duckdb":
        with duckdb.connect(str(warehouse), read_only=True) as con:
            employees = con.execute("select count(*) from credly_employees").fetchone()[0]
            events = con.execute("select count(*) from credly_events").fetchone()[0]
            templates = con.execute("select count(*) from credly_badge_templates").fetchone()[0]
        assert employees == len(credly.state.employees)
        assert events == len(credly.state.events) > 0
        assert templates == len(credly.state.templates) > 0


def test_event_driven_example_records_emulator_events_idempotently(environment):
    """``dag.test()`` cannot drive an AssetWatcher: feed the task's logic what the trigger yields instead."""
    from contextlib import closing
    from datetime import UTC, datetime

    from airflow_provider_credly.hooks.credly import CredlyHook
    from airflow_provider_credly.triggers.events import EventWatermark, event_payload, read_new_events

    credly, warehouse = environment
    dag = _load("credly_event_driven")
    module = load_module(ROOT / "dags_examples" / "credly_event_driven.py", "credly_event_driven_example")
    (watcher,) = module.CREDLY_BADGE_EVENTS.watchers
    path, kwargs = watcher.trigger.serialize()
    assert path == "airflow_provider_credly.triggers.events.CredlyEventTrigger"
    assert credly.token not in json.dumps(kwargs)
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert "credly_badge_events" in repr(dag.timetable.asset_condition)

    credly.state.issue_badge(
        badge_template_id=credly.state.templates[0].id,
        recipient_email="event.driven@example.org",
        issued_to_first_name="Eve",
        issued_to_last_name="Driven",
        issued_at="2026-11-20 10:00:00 +0000",
    )
    with closing(CredlyHook().client) as client:
        events, _, _ = read_new_events(client, EventWatermark(datetime(1970, 1, 1, tzinfo=UTC)))
    asset_events = [{"extra": {"from_trigger": True, "payload": event_payload(e)}} for e in events]
    rows = module.event_rows(asset_events + asset_events[:1])  # a redelivered event in the same run
    for _ in range(2):  # and the whole run delivered again: the table does not change
        module.upsert_event_rows("duckdb_warehouse", module.TABLE, rows)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stored = dict(con.execute(f"select event_id, event_type from {module.TABLE}").fetchall())
    assert stored == {e.id: e.event_type for e in credly.state.events}


def test_token_expiry_example_fails_below_its_threshold(environment):
    credly, _ = environment
    # the emulator's token has 170 days left: a threshold above that fails the check (and its alert runs)
    dag_run = _load("credly_token_expiry_check").test(run_conf={"min_days_left": 175})
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed", states
    assert states["check_token"] == "failed"
    assert states["report"] == "upstream_failed"
    assert credly.state.request_count("GET", "authorization_tokens.list") >= 1
