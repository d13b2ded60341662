"""Lineage, links and failure semantics under real Airflow runs (``dag.test()``), over real HTTP to the
emulator and into a real DuckDB file.

* OpenLineage: the ``credly_lineage`` DAG (issue, revoke, transfer) runs in its own process with the
  OpenLineage provider and a file transport; the emitted COMPLETE events name the Credly collection and the
  DuckDB table as the test expects, with the table's columns and the rows written, and no token.
* The transfer's outlet alias resolves to the table's Asset (``duckdb:<file>/main/credly_badges``).
* Extra links are stored for the UI: the badge's URL and the organization's page.
* A task with ``retries=2`` failing with a 401 or an invalid argument runs once; a 5xx is retried.
* Bulk issue and bulk revoke with ``retries=2``: when every failed row met a 401 (or a 404) the task runs
  once and still reports each row; a mix with a transient failure is retried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, connect_credly
from tests.helpers import load_module, run_dag, task_states

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("lineage_worker.py")


def _template(emulator: Any) -> str:
    return emulator.state.templates[0].id


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _complete(events: list[dict[str, Any]], job: str) -> dict[str, Any]:
    (event,) = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == job]
    return event


def _names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_openlineage_events_asset_event_and_links_of_a_real_run(credly_emulator, tmp_path: Path) -> None:
    pytest.importorskip("airflow.providers.openlineage.extractors", reason="the dev extra installs it")
    emu = credly_emulator
    home = tmp_path / "home"
    home.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW_CONN_CREDLY_DEFAULT": json.dumps(
            {
                "conn_type": "credly",
                "host": emu.base_url,
                "password": emu.token,
                "extra": {"organization_id": emu.org_id, "backoff_base": 0.01, "backoff_max": 0.2},
            }
        ),
        "AIRFLOW_CONN_DUCKDB_WAREHOUSE": json.dumps({"conn_type": "duckdb", "host": str(warehouse)}),
    }
    proc = subprocess.run(
        [sys.executable, str(WORKER), json.dumps({"template": _template(emu)})],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["states"] == {"issue": "success", "revoke": "success", "load": "success"}

    host = emu.base_url.split("://", 1)[1].split("/", 1)[0]
    badges = (f"credly://{host}", f"organizations/{emu.org_id}/badges")
    table = (f"duckdb://{warehouse}", "warehouse.main.credly_badges")
    events = _events(events_file)
    issue = _complete(events, "credly_lineage.issue")
    assert (_names(issue["inputs"]), _names(issue["outputs"])) == ([], [badges])
    revoke = _complete(events, "credly_lineage.revoke")
    assert _names(revoke["outputs"]) == [badges]
    load = _complete(events, "credly_lineage.load")
    assert _names(load["inputs"]) == [badges]
    assert _names(load["outputs"]) == [table]
    (output,) = load["outputs"]
    columns = [f["name"] for f in output["facets"]["schema"]["fields"]]
    assert columns[:2] == ["id", "state"] or "id" in columns
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == emu.state.badges_count()
    assert emu.token not in events_file.read_text()

    # the outlet alias resolved to the table's Asset, named as the DuckDB file and table
    (event,) = result["asset_events"]
    uri = f"duckdb:{warehouse}/main/credly_badges"
    assert (event["uri"], event["name"], event["source_task_id"]) == (uri, uri, "load")
    assert event["extra"]["rows"] == emu.state.badges_count()

    (badge,) = emu.state.find_badges(recipient_email="lineage@example.edu")
    links = result["links"]
    assert links["issue:_link_CredlyBadgeLink"].endswith(f"/badges/{badge['id']}")
    org_page = f"{emu.base_url.rsplit('/v1', 1)[0]}/mgmt/organizations/{emu.org_id}"
    assert links["issue:_link_CredlyOrganizationLink"] == org_page
    assert links["load:_link_CredlyOrganizationLink"] == org_page
    assert "revoke:_link_CredlyBadgeLink" not in links  # revoke has no badge link
    assert all(emu.token not in v for v in links.values())


def _fail_fast_dag() -> Any:
    module = load_module(ROOT / "tests" / "dags" / "lineage_and_failures.py", "credly_test_fail_fast")
    return module.fail_fast_dag


def _connect(monkeypatch: pytest.MonkeyPatch, emu: Any, token: str) -> None:
    connect_credly(monkeypatch, emu, token=token, max_retries=0, backoff_max=0.05)


def _issue_ti(dag_run: Any) -> Any:
    return next(t for t in dag_run.get_task_instances() if t.task_id == "issue")


def test_a_401_fails_at_once_although_the_task_has_retries(airflow_db, credly_emulator, monkeypatch) -> None:
    _connect(monkeypatch, credly_emulator, "wrong-token-0000")
    before = credly_emulator.state.badges_count()
    dag_run = run_dag(_fail_fast_dag(), run_conf={"template": _template(credly_emulator)})
    assert task_states(dag_run) == {"issue": "failed"}
    assert _issue_ti(dag_run).try_number == 1  # retries=2, none spent
    assert credly_emulator.state.badges_count() == before


def test_an_invalid_argument_fails_at_once(airflow_db, credly_emulator, monkeypatch) -> None:
    _connect(monkeypatch, credly_emulator, credly_emulator.token)
    conf = {"template": _template(credly_emulator), "email": "not-an-email"}
    dag_run = run_dag(_fail_fast_dag(), run_conf=conf)
    assert task_states(dag_run) == {"issue": "failed"}
    assert _issue_ti(dag_run).try_number == 1


def test_a_server_error_is_still_retried(airflow_db, credly_emulator, monkeypatch) -> None:
    _connect(monkeypatch, credly_emulator, credly_emulator.token)
    credly_emulator.set_faults(error_rate=1.0, fail_paths=r"/badges$", error_methods="POST")
    conf = {"template": _template(credly_emulator), "email": "server.error@example.edu"}
    dag_run = run_dag(_fail_fast_dag(), run_conf=conf)
    assert task_states(dag_run) == {"issue": "failed"}
    assert _issue_ti(dag_run).try_number == 3  # the first try and both retries


def _bulk_run(emu: Any, **conf: Any) -> tuple[Any, dict[str, Any]]:
    module = load_module(ROOT / "tests" / "dags" / "lineage_and_failures.py", "credly_test_bulk_fail_fast")
    dag_run = run_dag(module.bulk_fail_fast_dag, run_conf={"template": _template(emu), **conf})
    return dag_run, {ti.task_id: ti for ti in dag_run.get_task_instances()}


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "recipient_email": f"bulk{i}@example.edu",
            "issued_to_first_name": "Bulk",
            "issued_to_last_name": str(i),
        }
        for i in range(n)
    ]


def test_bulk_issue_and_revoke_with_a_401_for_every_row_fail_at_once(
    airflow_db, credly_emulator, monkeypatch
) -> None:
    emu = credly_emulator
    _connect(monkeypatch, emu, "wrong-token-0000")  # the emulator answers 401 to every request
    ids = [b["id"] for b in emu.state.find_badges(state="accepted")[:3]]
    dag_run, tis = _bulk_run(emu, rows=_rows(3), badge_ids=ids, max_failures=2)
    assert task_states(dag_run) == {"bulk_issue": "failed", "bulk_revoke": "failed"}
    assert tis["bulk_issue"].try_number == tis["bulk_revoke"].try_number == 1  # retries=2, none spent
    # every row was tried and is reported, even though the task failed
    issue = tis["bulk_issue"].xcom_pull(task_ids="bulk_issue", key="report")
    assert (issue["failed"], issue["issued"], issue["skipped"]) == (3, 0, 0)
    assert all(outcome == "failed" and "401" in reason for _, outcome, reason in issue["rows"])
    revoke = tis["bulk_revoke"].xcom_pull(task_ids="bulk_revoke", key="report")
    assert revoke["counts"] == {"failed": 3}
    assert all("401" in r["detail"] for r in revoke["results"])
    assert emu.state.issue_count == 0
    assert all(emu.state.get_badge(i)["state"] == "accepted" for i in ids)


def test_bulk_revoke_fails_at_once_when_every_failure_is_permanent_and_retries_a_mix(
    airflow_db, credly_emulator, monkeypatch
) -> None:
    emu = credly_emulator
    _connect(monkeypatch, emu, emu.token)
    live = [b["id"] for b in emu.state.find_badges(state="accepted")[:2]]
    missing = "00000000-0000-4000-8000-000000000000"
    # a badge that is not there (404: permanent) next to one revoked: no retry
    dag_run, tis = _bulk_run(emu, badge_ids=[live[0], missing], rows=_rows(1))
    assert tis["bulk_revoke"].state == "failed" and tis["bulk_revoke"].try_number == 1
    report = tis["bulk_revoke"].xcom_pull(task_ids="bulk_revoke", key="report")
    assert report["counts"] == {"revoked": 1, "failed": 1}
    assert tis["bulk_issue"].state == "success"

    # the same 404 next to a badge whose revoke meets a 503: a retry may fix that one, so retries happen
    emu.set_faults(error_rate=1.0, fail_paths=f"/badges/{live[1]}/revoke", error_methods="PUT")
    dag_run, tis = _bulk_run(emu, badge_ids=[missing, live[1]], rows=_rows(1), max_failures=1)
    assert tis["bulk_revoke"].state == "failed" and tis["bulk_revoke"].try_number == 3
    report = tis["bulk_revoke"].xcom_pull(task_ids="bulk_revoke", key="report")
    assert report["counts"] == {"failed": 2}
