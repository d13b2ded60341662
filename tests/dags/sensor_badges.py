"""Sensor DAGs run by tests/integration/test_sensor_dags.py."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_credly.sensors.badges import CredlyBadgeSensor


def _sensor_dag(dag_id: str, *, deferrable: bool) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={"email": "someone@example.com"},
    ) as dag:
        wait = CredlyBadgeSensor(
            task_id="wait_for_badge",
            filters={"recipient_email": "{{ params.email }}"},
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=60,
        )

        @task
        def report(found: dict) -> int:
            print(f"badges found: {found['count']} ({', '.join(found['ids'])})")
            return int(found["count"])

        report(wait.output)
    return dag


sensor_badges_deferrable = _sensor_dag("sensor_badges_deferrable", deferrable=True)
sensor_badges_poke = _sensor_dag("sensor_badges_poke", deferrable=False)
