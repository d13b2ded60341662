"""The example DAGs in a real Airflow deployment, as users run them: PostgreSQL metadata DB, scheduler,
dag-processor, triggerer and api-server as separate processes (LocalExecutor, then CeleryExecutor with Redis
and two workers), every DAG unpaused and triggered through the REST API with ``conf={}``; the event-driven
example also run by the CredlyEventTrigger in the triggerer on an emulator event.

``dag.test()`` hides what this finds: parallel writers of one DuckDB file, examples that fail on their second
run, templates undefined on manual runs, a deferrable sensor that never really defers.
"""

from __future__ import annotations

import os
import re
import time

import duckdb
import pytest

from airflow_provider_credly.testing.deployment import (
    DUCKDB_POOL,
    EXAMPLES,
    AirflowApi,
    AirflowDeployment,
    create_database,
)
from tests.deployment.conftest import WAREHOUSE_DATABASE
from tests.helpers import require

pytestmark = [pytest.mark.deployment, pytest.mark.integration, pytest.mark.timeout(900)]

DAG_IDS = sorted(p.stem for p in EXAMPLES.glob("*.py"))
SENSOR_DAG, SENSOR_TASK = "credly_sensor_gated", "wait_for_accepted_badges"
BACKFILL_DAG = "credly_badges_backfill_partitioned"
EVENT_DAG, EVENT_TASK, EVENT_TABLE = "credly_event_driven", "record_events", "credly_badge_event_log"
REDIS = ("127.0.0.1", 6379)


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis(*REDIS, socket_connect_timeout=3).ping()
    except Exception as exc:  # any failure means "no server"; the reason is reported
        return f"Redis at {REDIS[0]}:{REDIS[1]} is not reachable: {type(exc).__name__}: {exc}"
    return None


def _poll(what: str, check, timeout: float, dep: AirflowDeployment, interval: float = 1.0):
    """``check()``'s first truthy value; ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        dep.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def _deferred_sensor(api: AirflowApi) -> tuple[str, dict] | None:
    for run in api.dag_runs(SENSOR_DAG):
        for ti in api.task_instances(SENSOR_DAG, run["dag_run_id"]):
            if ti["task_id"] == SENSOR_TASK and ti["state"] == "deferred":
                return run["dag_run_id"], ti
    return None


def _failures(api: AirflowApi, runs: dict[str, list[dict]]) -> dict[str, dict[str, str]]:
    """``{dag_id/run_id: {task: state}}`` of every run that did not succeed."""
    out = {}
    for dag_id, dag_runs in runs.items():
        for run in dag_runs:
            if run["state"] != "success":
                tis = api.task_instances(dag_id, run["dag_run_id"])
                out[f"{dag_id}/{run['dag_run_id']}"] = {
                    f"{t['task_id']}[{t['map_index']}]": t["state"] for t in tis
                }
    return out


def _all_task_logs(api: AirflowApi, runs: dict[str, list[dict]]) -> dict[tuple[str, str, str, int], str]:
    """Every task instance's log (its last try), read through the REST API."""
    logs = {}
    for dag_id, dag_runs in runs.items():
        for run in dag_runs:
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                if ti["try_number"]:
                    key = (dag_id, run["dag_run_id"], ti["task_id"], ti["map_index"])
                    logs[key] = api.task_log(
                        dag_id, run["dag_run_id"], ti["task_id"], ti["try_number"], ti["map_index"]
                    )
    return logs


def _secrets(credly, canvas) -> list[str]:
    state = canvas.state
    return [credly.token, canvas.password, *state.tokens, *state.refresh_tokens]


def _assert_no_secret(texts: dict, secrets: list[str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a credential appears in the log of {where}"


def _event_run(api: AirflowApi, dep: AirflowDeployment, event, badge: dict) -> str:
    """The one asset-triggered run an emulator event created succeeded and recorded exactly that event (as
    its consumed asset events and its task log show; the DuckDB row is read once Airflow let go of the file).
    """
    (run,) = api.wait_for_runs([EVENT_DAG], timeout=120, on_poll=dep.check_alive, interval=0.5)[EVENT_DAG]
    assert run["state"] == "success" and run["run_type"] == "asset_triggered", run
    consumed = [e["extra"]["payload"] for e in api.upstream_asset_events(EVENT_DAG, run["dag_run_id"])]
    assert [(p["event_id"], p["event_type"], p["badge_id"]) for p in consumed] == [
        (event.id, "badge.created", badge["id"])
    ], consumed
    (ti,) = api.task_instances(EVENT_DAG, run["dag_run_id"])
    log = api.task_log(EVENT_DAG, run["dag_run_id"], EVENT_TASK, ti["try_number"])
    assert f"{EVENT_TABLE}: 1 event(s) upserted" in log, log[-3000:]
    return str(run["dag_run_id"])


def test_local_executor_runs_every_example(airflow):
    """Every example DAG succeeds, and again on a second manual run (``CREDLY_DEPLOYMENT_ROUNDS=1``: the first
    round only, as the floor environment runs it to stay within the test command's time). Before the others
    run, the event-driven example's CredlyEventTrigger in the triggerer turns an emulator event into a
    successful ``asset_triggered`` run recording that event."""
    rounds = int(os.environ.get("CREDLY_DEPLOYMENT_ROUNDS", "2"))
    dep, credly, canvas, warehouse = airflow
    dep.start_core("LocalExecutor")
    api = dep.api()
    dep.wait_for_dags(api, DAG_IDS)
    api.set_pool(DUCKDB_POOL, 1, "one writer at a time per DuckDB file")

    # Every DAG is paused: no badge is issued and nothing but the event trigger reads the events until the
    # others are unpaused below. The event-driven example's watcher trigger is registered when its file is
    # parsed with the DAG unpaused: a re-parse now, not after min_file_process_interval.
    events_before = len(credly.state.events)
    reads_before = credly.state.request_count("GET", "events.list")
    api.unpause(EVENT_DAG)
    api.reparse(EVENT_DAG)
    # The sensor meanwhile: nothing was issued in the last day, so it must defer to the triggerer ...
    api.unpause(SENSOR_DAG)
    api.trigger(SENSOR_DAG)
    deferred_run, _ = _poll("the sensor deferred", lambda: _deferred_sensor(api), 120, dep)
    # two reads of the events list (poll interval 1 s): the trigger's first read, its baseline, is over
    _poll(
        "the triggerer polling Credly events",
        lambda: credly.state.request_count("GET", "events.list") >= reads_before + 2,
        120,
        dep,
        interval=0.5,
    )
    assert api.dag_runs(EVENT_DAG) == []  # no run before an event
    badge = credly.state.issue_badge(
        badge_template_id=credly.state.templates[0].id,
        recipient_email="watched.earner@example.org",
        issued_to_first_name="Wanda",
        issued_to_last_name="Watcher",
        issued_at="2026-11-20 10:00:00 +0000",
    )
    (event,) = credly.state.events[events_before:]
    event_run = _event_run(api, dep, event, badge)
    # ... until a badge is issued: this one (pending, changed now), or the issuing example's among the others.
    for dag_id in DAG_IDS:
        if dag_id != SENSOR_DAG:
            api.unpause(dag_id)
            api.trigger(dag_id)
    first = api.wait_for_runs(DAG_IDS, timeout=420, on_poll=dep.check_alive)
    assert not _failures(api, first), _failures(api, first)

    # Every example succeeds when run again (a manual run: no logical date, no data interval). The scheduled
    # examples have then run three times (scheduled at unpause, manual, manual).
    if rounds >= 2:
        counts = {dag_id: len(runs) for dag_id, runs in first.items()}
        for dag_id in DAG_IDS:
            api.trigger(dag_id)
        wanted = {dag_id: n + 1 for dag_id, n in counts.items()}
        second = api.wait_for_runs(DAG_IDS, timeout=360, at_least=wanted, on_poll=dep.check_alive)
        assert not _failures(api, second), _failures(api, second)
        assert all(len(second[d]) >= 2 for d in DAG_IDS), {d: len(r) for d, r in second.items()}
    else:
        # one round: the loads may have run before the issuing example; they load once more, so that the
        # tables can be checked exact below
        reload = ["credly_badges_hourly_to_duckdb", BACKFILL_DAG]
        for dag_id in reload:
            api.trigger(dag_id)
        wanted = {dag_id: len(first[dag_id]) + 1 for dag_id in reload}
        again = api.wait_for_runs(reload, timeout=300, at_least=wanted, on_poll=dep.check_alive)
        assert not _failures(api, again), _failures(api, again)
        second = {**first, **again}

    # The sensor really waited in the triggerer and was resumed by its event, in the same try.
    sensor = next(t for t in api.task_instances(SENSOR_DAG, deferred_run) if t["task_id"] == SENSOR_TASK)
    assert sensor["state"] == "success" and sensor["try_number"] == 1, sensor
    logs = _all_task_logs(api, second)
    sensor_log = logs[(SENSOR_DAG, deferred_run, SENSOR_TASK, -1)]
    assert "Pausing task as DEFERRED" in sensor_log or "deferred" in sensor_log.lower(), sensor_log[-3000:]
    assert "Trigger: " in sensor_log, sensor_log[-3000:]  # logged by execute_complete after the event
    # The trigger's own line goes to the task's trigger log, or, when the triggerer handled the trigger's end before
    # that line (a race in Airflow's triggerer: it then has no file for it), to the triggerer's output.
    fired = [line for line in sensor_log.splitlines() if "Trigger fired event" in line]
    if not fired:
        name = f"{SENSOR_DAG}/{deferred_run}/{SENSOR_TASK}/"
        triggerer_out = dep.component_logs().get("triggerer", "")
        fired = [
            line for line in triggerer_out.splitlines() if "Trigger fired event" in line and name in line
        ]
    assert fired and all("'status': 'success'" in line for line in fired), (fired, sensor_log[-3000:])

    # A transfer's task log (through the API) shows its progress.
    load_logs = [
        text
        for key, text in logs.items()
        if key[0] == "credly_badges_hourly_to_duckdb" and key[2] == "load_badges"
    ]
    assert load_logs and all(re.search(r"Loaded \d+ rows in \d+ pages into", t) for t in load_logs), load_logs

    # No credential in any task log (API) nor in any component's or task's log file.
    secrets = _secrets(credly, canvas)
    _assert_no_secret({f"task {k}": v for k, v in logs.items()}, secrets)
    _assert_no_secret({str(p): p.read_text(errors="replace") for p in dep.log_files()}, secrets)

    # The other examples' badges made more asset-triggered runs of the event-driven example meanwhile (all
    # in ``second``, succeeded); none of them is still running when DuckDB is read.
    assert event_run in {r["dag_run_id"] for r in second[EVENT_DAG]}
    api.wait_for_runs([EVENT_DAG], timeout=120, on_poll=dep.check_alive)

    dep.stop()  # DuckDB takes one process per file: read it once Airflow let go of it
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ids = [r[0] for r in con.execute("select id from credly_badges_backfill").fetchall()]
        hourly = con.execute("select count(*) from credly_badges").fetchone()[0]
        recorded = con.execute(f"select event_id, event_type, badge_id from {EVENT_TABLE}").fetchall()
    assert len(ids) == len(set(ids)) == credly.state.badges_count()
    assert hourly == credly.state.badges_count()
    # the watched event's row as the trigger delivered it; every row an event that occurred after the
    # trigger's baseline (none from before it was delivered)
    assert (event.id, "badge.created", badge["id"]) in recorded, recorded
    later = {e.id for e in credly.state.events[events_before:]}
    assert {row[0] for row in recorded} <= later, recorded


def test_celery_executor_spreads_the_backfill_over_two_workers(airflow):
    require(_redis_problem())
    dep, credly, canvas, _ = airflow
    dsn_db = create_database(WAREHOUSE_DATABASE)
    assert dsn_db.endswith(WAREHOUSE_DATABASE)
    # PostgreSQL takes parallel writers, so the backfill's partitions run side by side (DuckDB: one at a time).
    dep.connections = {
        **dep.connections,
        "postgres_warehouse": {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": WAREHOUSE_DATABASE,
        },
    }
    dep.env = {**dep.env, "CREDLY_WAREHOUSE_CONN_ID": "postgres_warehouse"}
    dep.start_core("CeleryExecutor")
    api = dep.api()
    # only the backfill runs on the workers: no task of the first test's DAGs keeps one of them busy
    for dag_id in DAG_IDS:
        if dag_id != BACKFILL_DAG:
            api.pause(dag_id)
    dep.start_celery_workers(["worker-a", "worker-b"])
    # the dag-processor re-parsed the file with the new setting (no DuckDB pool any more)
    _poll(
        "backfill re-parsed for PostgreSQL",
        lambda: api.request("GET", f"/dags/{BACKFILL_DAG}/tasks/load_partition")["pool"] == "default_pool",
        120,
        dep,
    )
    before = len(api.dag_runs(BACKFILL_DAG))
    # each partition then takes a few seconds, not a fraction of one: a worker that is free gets the next
    # queued partition instead of the first worker finishing them all one after another (seen once in four
    # fresh-clone runs); max_active_runs=1 keeps runs from overlapping on the same partitions
    credly.set_faults(latency_ms=500)
    try:
        api.unpause(BACKFILL_DAG)
        run_id = api.trigger(BACKFILL_DAG, conf={"partitions": 4})
        runs = api.wait_for_runs([BACKFILL_DAG], timeout=300, at_least=before + 1, on_poll=dep.check_alive)
    finally:
        credly.clear_faults()
    assert not _failures(api, runs), _failures(api, runs)

    tis = [t for t in api.task_instances(BACKFILL_DAG, run_id) if t["task_id"] == "load_partition"]
    assert len(tis) == 4  # the planner returns the partitions asked for (the 400 badges span enough days)
    assert {t["hostname"] for t in tis} == {"worker-a", "worker-b"}, [
        (t["map_index"], t["hostname"]) for t in tis
    ]

    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={WAREHOUSE_DATABASE}") as conn:
        total, distinct = conn.execute(
            "select count(*), count(distinct id) from credly_badges_backfill"
        ).fetchone()
    assert total == distinct == credly.state.badges_count()
    _assert_no_secret(dep.component_logs(), _secrets(credly, canvas))
