"""Exactly once across real Airflow task retries: the first try is broken part-way, the retry finishes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration


def load_dag() -> Any:
    path = ROOT / "tests" / "dags" / "canvas_award_retries.py"
    return load_module(path, "canvas_award_retries").canvas_award_retries()


class FirstTryBreaker(threading.Thread):
    """Once ``after`` assertions were created, fail every award request for a while (the first try gives
    up and fails), then only lose responses after their effect (``error_after_rate``) for the retry.
    """

    def __init__(self, emulator: Any, after: int) -> None:
        super().__init__(daemon=True)
        self.emulator, self.after = emulator, after
        self.done = threading.Event()

    def run(self) -> None:
        stats = self.emulator.state.stats
        start = stats["assertions_created"]
        while stats["assertions_created"] - start < self.after:
            time.sleep(0.002)
        injected = stats["errors_injected"]
        self.emulator.set_faults(error_rate=1.0, error_after_rate=0.0, fail_paths="assertions")
        while stats["errors_injected"] - injected < 80:  # > 8 attempts x 4 workers: a row gives up
            time.sleep(0.002)
        self.emulator.set_faults(error_rate=0.0, error_after_rate=0.2, fail_paths="assertions")
        self.done.set()


def test_bulk_award_exactly_once_across_task_retries(airflow_db, canvas_conn) -> None:
    state = canvas_conn.state
    bc = state.badge_class_ids[0]
    canvas_conn.set_faults(error_after_rate=0.2, fail_paths="assertions", seed=5)
    breaker = FirstTryBreaker(canvas_conn, after=100)
    breaker.start()

    dag_run = run_dag(load_dag(), run_conf={"badge_class_id": bc, "rows": 300})

    assert breaker.done.is_set(), "the first try was not interrupted"
    assert task_states(dag_run) == {"make_rows": "success", "award": "success"}
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "award")
    assert ti.try_number >= 2
    emails = [f"retry{i:04d}@example.org" for i in range(300)]
    assert {
        e: n for e in emails if (n := state.count_assertions(badgeclass=bc, recipient_email=e)) != 1
    } == {}
    report = ti.xcom_pull(task_ids="award")
    assert (report["total"], report["failed"], report["skipped"]) == (300, 0, 0)
    # the first try's awards, refused as duplicates by the retry, are recognised as this task's own work
    # (created after the run started): issued, not "already existed"
    assert (report["issued"], report["already_existed"]) == (300, 0)
    assert state.stats["duplicate_rejected"] >= 50
    assert len({r[2] for r in report["rows"]}) == 300
    assert state.stats["errors_after"] > 0
