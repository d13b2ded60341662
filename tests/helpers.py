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


def load_module(path: Any, name: str) -> Any:
    """Import a Python file (a DAG file, the demo script) as module ``name``.

    DAG files are loaded from their own path so their fileloc stays inside the dags folder.
    """
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def require(problem: str | None) -> None:
    """Skip with ``problem`` (a missing service or tool), or fail under ``CI=true``: in CI nothing that is
    missing may pass as a skip."""
    import os

    import pytest

    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(problem)
