"""Exactly-once issuing under faults, over real HTTP to the emulator.

The emulator injects ~10 % faults on badge requests: 5xx before any work, dropped connections before any
work, and responses lost after the badge was created (500 or a dropped connection). The DAG's first try is
made to fail part-way (every badge request fails for a while), Airflow retries the task, and the retry must
find the badges already issued instead of issuing them again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airflow_provider_credly.operators.badges import CredlyIssueBadgeOperator
from tests.conftest import ROOT, connect_credly
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration

TEN_PERCENT = {"error_rate": 0.04, "drop_rate": 0.02, "error_after_rate": 0.04, "fail_paths": r"/badges$"}


def load_dag() -> Any:
    path = ROOT / "tests" / "dags" / "ops_exactly_once.py"
    return load_module(path, "ops_exactly_once").ops_exactly_once()


class FirstTryBreaker(threading.Thread):
    """Once ``after`` badges exist, fail every badge request until the retry starts reading existing badges
    (the high-volume search, which the faults do not touch); then back to the 10 % faults.
    """

    def __init__(self, emulator: Any, after: int) -> None:
        super().__init__(daemon=True)
        self.emulator, self.after = emulator, after
        self.done = threading.Event()

    def run(self) -> None:
        state = self.emulator.state
        while state.issue_count < self.after:
            time.sleep(0.002)
        seen = state.request_count("GET", "badges.high_volume")
        self.emulator.set_faults(error_rate=1.0, drop_rate=0.0, error_after_rate=0.0)
        while state.request_count("GET", "badges.high_volume") == seen:
            time.sleep(0.002)
        self.emulator.set_faults(**TEN_PERCENT)
        self.done.set()


def test_bulk_issue_1000_badges_with_faults_and_task_retries(
    airflow_db, credly_emulator_factory, monkeypatch
) -> None:
    emulator = credly_emulator_factory(badges=200, employees=5, fault_seed=7, **TEN_PERCENT)
    connect_credly(monkeypatch, emulator, backoff_max=0.05, max_retries=3)
    template = emulator.state.templates[0]
    assert template.allow_duplicates  # the hard case: Credly would not refuse a second badge
    breaker = FirstTryBreaker(emulator, after=400)
    breaker.start()

    dag_run = run_dag(load_dag(), run_conf={"template": template.id})

    assert breaker.done.is_set(), "the first try was not interrupted"
    assert task_states(dag_run) == {"make_rows": "success", "issue": "success"}
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "issue")
    assert ti.try_number >= 2  # Airflow retried the task inside dag.test()
    stats = emulator.stats()
    print(
        f"tries={ti.try_number} emulator={ {k: stats[k] for k in ('errors_injected', 'errors_after', 'dropped')} }"
    )
    assert stats["errors_after"] > 0
    assert stats["errors_injected"] > 0

    emails = [f"eo{i}@example.org" for i in range(1000)]
    per_email = {
        e: [b for b in emulator.state.find_badges(recipient_email=e) if b["badge_template_id"] == template.id]
        for e in emails
    }
    assert {e: len(bs) for e, bs in per_email.items() if len(bs) != 1} == {}
    report = ti.xcom_pull(task_ids="issue")
    assert report["total"] == 1000
    assert report["failed"] == 0
    assert report["skipped"] == 0
    # the first try's badges, found by the retry's one-pass look-up and not issued again, were created
    # after the run started: this task's own work, so issued (none existed before the task)
    assert (report["issued"], report["already_existed"]) == (1000, 0)
    assert emulator.state.request_count("GET", "badges.high_volume") > 0
    assert emulator.state.issue_count == 1000
    assert len(report["rows"]) == 1000
    assert sorted(r[0] for r in report["rows"]) == list(range(1000))
    assert {r[2] for r in report["rows"]} == {per_email[e][0]["id"] for e in emails}


def test_single_issue_adopts_badge_after_lost_response_and_on_retry(
    credly_emulator_factory, monkeypatch
) -> None:
    emulator = credly_emulator_factory(
        badges=20, employees=1, error_after_rate=1.0, error_after_mode="alternate"
    )
    connect_credly(monkeypatch, emulator, backoff_max=0.05)
    template = emulator.state.templates[0]  # allows duplicates
    op = CredlyIssueBadgeOperator(
        task_id="one",
        recipient_email="solo@example.org",
        issued_to_first_name="Solo",
        issued_to_last_name="Earner",
        badge_template_id=template.id,
    )

    class TI:
        try_number = 1

    first = op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert first["outcome"] == "issued"
    emulator.clear_faults()
    TI.try_number = 2
    second = op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert (second["outcome"], second["id"]) == ("already_existed", first["id"])
    assert len(emulator.state.find_badges(recipient_email="solo@example.org")) == 1
    assert emulator.state.issue_count == 1
