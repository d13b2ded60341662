"""CredlyBadgeSensor in real dag.test() runs: deferred to its trigger (run inline) and resumed; poke mode."""

from __future__ import annotations

import threading
import time

import pytest
from airflow.models.xcom import XComModel

from tests.integration.transfer_support import load_dag_module, run_dag, task_states
from tests.unit.sensors.test_badges import emu  # noqa: F401  (emulator fixture on credly_default)

pytestmark = [pytest.mark.integration]


def _issue(state, email):
    return state.issue_badge(
        badge_template_id=state.templates[1].id,
        recipient_email=email,
        issued_to_first_name="Grace",
        issued_to_last_name="Hopper",
        issued_at="2026-11-22 10:00:00 +0000",
    )["id"]


def _xcom(dr, task_id):
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids=dr.dag_id, task_ids=task_id, key="return_value")
        ).first()
        return XComModel.deserialize_value(row)


def test_deferrable_sensor_defers_then_resumes(airflow_db, emu):  # noqa: F811
    dags = load_dag_module("sensor_badges")
    email = "deferred@example.com"
    issued: list[str] = []

    def issue_once_deferred():  # the sync check and at least one trigger poll found nothing first
        deadline = time.monotonic() + 30
        while emu.state.request_count("GET", "badges.list") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        issued.append(_issue(emu.state, email))

    issuer = threading.Thread(target=issue_once_deferred)
    issuer.start()
    dr = run_dag(dags.sensor_badges_deferrable, run_conf={"email": email})
    issuer.join()
    assert task_states(dr) == {"wait_for_badge": "success", "report": "success"}
    assert emu.state.request_count("GET", "badges.list") >= 2
    assert _xcom(dr, "wait_for_badge") == {"count": 1, "ids": issued}
    assert _xcom(dr, "report") == 1


def test_poke_sensor_returns_existing_badges(airflow_db, emu):  # noqa: F811
    dags = load_dag_module("sensor_badges")
    email = "poked@example.com"
    ids = [_issue(emu.state, email)]
    dr = run_dag(dags.sensor_badges_poke, run_conf={"email": email})
    assert task_states(dr) == {"wait_for_badge": "success", "report": "success"}
    assert _xcom(dr, "wait_for_badge") == {"count": 1, "ids": ids}
