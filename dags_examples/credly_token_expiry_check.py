"""Alert weeks before the Credly authorization token expires (Credly tokens live 180 days after creation).

Runs daily. :class:`~airflow_provider_credly.sensors.tokens.CredlyTokenExpirySensor` finds the connection's
own token among the organization's authorization tokens (never logging or returning its value) and fails
when fewer than ``params.min_days_left`` days remain or the token lacks a required permission; the task's
``on_failure_callback`` is where a team plugs its alert (e-mail, Slack, PagerDuty...). The report task logs
the days left and the permissions from the sensor's XCom.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.sensors.tokens import CredlyTokenExpirySensor


def alert_token_expiry(context: Any) -> None:
    """Stand-in for a real alert: the failure reason says how many days are left."""
    print(f"ALERT: Credly token check failed: {context.get('exception')}")


@dag(
    dag_id="credly_token_expiry_check",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"credly_conn_id": "credly_default", "min_days_left": 30},
    tags=["credly", "example", "tokens"],
)
def credly_token_expiry_check() -> None:
    check = CredlyTokenExpirySensor(
        task_id="check_token",
        credly_conn_id="{{ params.credly_conn_id }}",
        min_days_left="{{ params.min_days_left }}",
        require=["read", "write"],  # this organization's DAGs issue badges
        poke_interval=300,
        timeout=3600,  # only connection errors, 429s and 5xx wait; a short token fails at once
        mode="reschedule",
        on_failure_callback=alert_token_expiry,
    )

    @task
    def report(status: dict[str, Any]) -> dict[str, Any]:
        print(
            f"Credly token {status['token_id']}: {status['days_left']} day(s) left (expires "
            f"{status['expires_at']}); write enabled: {status['write_enabled']}"
        )
        return {"days_left": status["days_left"], "expires_at": status["expires_at"]}

    report(check.output)  # type: ignore[arg-type]


credly_token_expiry_check()
