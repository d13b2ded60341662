"""Runs the ``credly_lineage`` test DAG with ``dag.test()`` in its own process, so that the OpenLineage
listener is set up from this process's environment (``AIRFLOW__OPENLINEAGE__TRANSPORT``: a file
transport), which Airflow reads once per process. Used by tests/integration/test_lineage_and_failures.py.

``python lineage_worker.py '<run conf JSON>'``: prints one line ``RESULT <json>`` with the task states,
the extra links stored by each task, and the asset events of the run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(run_conf: dict[str, str]) -> None:
    sys.path.insert(0, str(ROOT))
    from airflow.models.asset import AssetEvent
    from airflow.utils import db
    from airflow.utils.session import create_session

    from tests.helpers import load_module, task_states

    db.initdb()
    module = load_module(ROOT / "tests" / "dags" / "lineage_and_failures.py", "credly_test_lineage")
    dag_run = module.lineage_dag.test(run_conf=run_conf)
    links = {}
    for ti in dag_run.get_task_instances():
        for key in ("_link_CredlyBadgeLink", "_link_CredlyOrganizationLink"):
            value = ti.xcom_pull(task_ids=ti.task_id, key=key)
            if value is not None:
                links[f"{ti.task_id}:{key}"] = value
    with create_session() as session:
        events = [
            {"uri": e.uri, "name": e.name, "extra": e.extra, "source_task_id": e.source_task_id}
            for e in session.query(AssetEvent).all()
        ]
    out = {"states": task_states(dag_run), "links": links, "asset_events": events}
    sys.stdout.write("RESULT " + json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
