"""Helpers shared by the DAG tests."""

from __future__ import annotations

from typing import Any


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """Run ``dag`` with ``dag.test()`` and return the DagRun (``dag.test`` never raises on task failure)."""
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished DagRun (mapped tasks as ``task_id[i]``)."""
    out = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        out[key] = str(ti.state)
    return out
