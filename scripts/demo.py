"""The main job: run every example DAG against the local Credly emulator into an embedded DuckDB warehouse.

Started by ``scripts/demo.sh`` inside the project's virtualenv. Everything is local: the emulator runs as
its own process on 127.0.0.1, Airflow uses a throw-away SQLite metadata DB under ``.demo/``, and the
warehouse is the DuckDB file ``.demo/warehouse.duckdb``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"

# Example DAGs in the order a data engineer would run them; files not listed run afterwards.
ORDER = [
    "credly_org_overview",
    "credly_issue_course_completions",
    "credly_revoke_from_table",
    "credly_hr_roster_sync",
    "credly_badges_hourly_to_duckdb",
    "credly_sensor_gated",
    "credly_badges_backfill_partitioned",
    "credly_workforce_and_events_to_duckdb",
    "canvas_credentials_issue_and_load",
]


def _prepare_airflow(home: Path) -> None:
    import warnings

    from cryptography.fernet import Fernet

    # Library deprecation chatter would drown what the demo is about.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*httpx.*")
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    os.environ["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = os.environ.get("DEMO_LOG_LEVEL", "WARNING")


def _set_conn(conn_id: str, **fields: Any) -> None:
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(fields)


def _load_dags() -> list[Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags_examples"), safe_mode=False)
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"!! could not import {path}:\n{error}")
        raise SystemExit(1)
    found = dict(bag.dags)
    ordered = [found.pop(d) for d in ORDER if d in found]
    return ordered + [found[d] for d in sorted(found)]


def _summarise_run(dag_run: Any) -> tuple[str, list[str]]:
    lines = []
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.start_date or 0, t.task_id, t.map_index)):
        label = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        value = (
            ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
            if str(ti.state) == "success"
            else None
        )
        shown = json.dumps(value, default=str)
        if len(shown) > 220:
            shown = shown[:217] + "..."
        lines.append(f"    {label:<40} {ti.state!s:<10} {shown if value is not None else ''}")
    return str(dag_run.state), lines


def _print_warehouse(path: Path) -> None:
    import duckdb

    print(f"\n== What landed in the DuckDB warehouse {path.relative_to(ROOT)}")
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            count = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]  # type: ignore[index]
            print(f"  {schema}.{table:<40} {count:>8} rows")
        states = [t for t in tables if t[1] == "credly_badges"]
        if states:
            schema, table = states[0]
            rows = con.execute(
                f'select state, count(*) from "{schema}"."{table}" group by 1 order by 2 desc'
            ).fetchall()
            print("  badges by state: " + ", ".join(f"{s}={n}" for s, n in rows))
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--badges", type=int, default=5000, help="badges seeded in the emulator")
    parser.add_argument("--employees", type=int, default=300, help="employees seeded in the emulator")
    parser.add_argument("--keep", action="store_true", help="keep the previous .demo/ directory")
    args = parser.parse_args()

    if DEMO.exists() and not args.keep:
        shutil.rmtree(DEMO)
    (DEMO / "airflow_home").mkdir(parents=True, exist_ok=True)
    _prepare_airflow(DEMO / "airflow_home")
    warehouse = DEMO / "warehouse.duckdb"
    os.environ["CREDLY_DEMO_DIR"] = str(DEMO)
    # The emulator's seeded badges are older than a day; the badges the issuing DAG just created are pending.
    os.environ.setdefault("CREDLY_SENSOR_STATES", "pending,accepted")

    from airflow_provider_credly.testing import spawn_emulator_process
    from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator

    started = time.monotonic()
    with (
        spawn_emulator_process(badges=args.badges, employees=args.employees, seed=1) as emulator,
        run_canvas_emulator(CanvasState.seeded(assertions=500)) as canvas,
    ):
        print(f"== Credly emulator on {emulator.base_url} ({args.badges} badges, {args.employees} employees)")
        print(f"== Canvas Credentials emulator on {canvas.base_url} (500 assertions)")
        _set_conn("canvas_credentials_default", **canvas.connection())
        _set_conn(
            "credly_default",
            conn_type="credly",
            host=emulator.base_url,
            password=emulator.token,
            extra={"organization_id": emulator.org_id},
        )
        _set_conn("duckdb_warehouse", conn_type="duckdb", host=str(warehouse))
        _set_conn("duckdb_default", conn_type="duckdb", host=str(warehouse))

        from airflow.utils import db

        db.initdb()
        failed = []
        for dag in _load_dags():
            print(f"\n== DAG {dag.dag_id}")
            dag_started = time.monotonic()
            state, lines = _summarise_run(dag.test())
            print("\n".join(lines))
            print(f"  -> {state} in {time.monotonic() - dag_started:.1f} s")
            if state != "success":
                failed.append(dag.dag_id)
    if warehouse.exists():
        _print_warehouse(warehouse)
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s; failed DAGs: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
