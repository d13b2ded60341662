"""Benchmark: employee sync plan for a large roster (default 100,000 employees).

Two measurements:

* ``plan`` (pure): validate a roster of N rows and plan it against N current employees streamed from a
  generator (3 % leavers, 5 % changes, 2 % hires), timing each step, and the process's peak RSS;
* ``http`` (optional, ``--http``): the same plan with the one listing pass served over HTTP by the emulator
  in its own process (N employees, 50 per page).

Run: ``.venv/bin/python benchmarks/bench_employee_sync.py --employees 100000 [--http]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_credly.sync.employees import plan_sync, validate_roster


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current(n: int) -> Iterator[dict[str, Any]]:
    for j in range(n):
        yield {
            "id": f"00000000-0000-0000-0000-{j:012d}",
            "email": f"earner{j}@example.com",
            "first_name": f"First{j}",
            "last_name": f"Last{j}",
            "external_id": f"EMP-{j:06d}",
            "team": f"Team {j % 50}",
            "department": f"Dept {j % 12}",
            "position_title": "Engineer",
            "employee_state": ("created", "pending", "accepted", "rejected")[j % 4],
        }


def roster_from(employees: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    rows = []
    for j, emp in enumerate(employees):
        if j % 33 == 0:  # ~3 % leavers
            continue
        row = {k: emp.get(k) for k in ("email", "first_name", "last_name", "team", "department")}
        row["external_id"] = emp.get("external_id") or f"HR-{j:06d}"
        if j % 20 == 1:  # 5 % changes
            row["team"] = "Reorganised"
        rows.append(row)
    rows += [
        {
            "email": f"hire{i}@example.com",
            "first_name": "New",
            "last_name": f"Hire{i}",
            "external_id": f"NEW-{i}",
        }
        for i in range(n // 50)
    ]
    return rows


def bench_plan(n: int) -> dict[str, Any]:
    base = rss_mb()
    t0 = time.perf_counter()
    raw = roster_from(current(n), n)
    t1 = time.perf_counter()
    roster = validate_roster(raw, "external_id")
    t2 = time.perf_counter()
    plan = plan_sync(roster, current(n), key="external_id", delete_missing=True, invite_states=["created"])
    t3 = time.perf_counter()
    return {
        "bench": "plan",
        "employees": n,
        "roster_rows": len(roster),
        "build_roster_s": round(t1 - t0, 2),
        "validate_s": round(t2 - t1, 2),
        "plan_s": round(t3 - t2, 2),
        "plan": plan.summary(),
        "peak_rss_mb": round(rss_mb(), 1),
        "rss_before_mb": round(base, 1),
    }


def bench_http(n: int) -> dict[str, Any]:
    from airflow_provider_credly.client import CredlyClient
    from airflow_provider_credly.testing import spawn_emulator_process

    with spawn_emulator_process(badges=10, employees=n) as emu:
        client = CredlyClient.create(emu.token, emu.org_id, base_url=emu.base_url)
        t0 = time.perf_counter()
        employees = list(client.iter_employees())
        t1 = time.perf_counter()
        roster = validate_roster(roster_from(iter(employees), n), "external_id")
        del employees
        t2 = time.perf_counter()
        plan = plan_sync(
            roster, client.iter_employees(), key="external_id", delete_missing=True, max_delete_fraction=0.2
        )
        t3 = time.perf_counter()
        client.close()
    return {
        "bench": "http",
        "employees": n,
        "first_listing_s": round(t1 - t0, 1),
        "plan_with_listing_s": round(t3 - t2, 1),
        "plan": plan.summary(),
        "peak_rss_mb": round(rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--http", action="store_true", help="also plan against the emulator over HTTP")
    args = parser.parse_args()
    print(json.dumps(bench_plan(args.employees)), flush=True)
    if args.http:
        print(json.dumps(bench_http(args.employees)), flush=True)


if __name__ == "__main__":
    main()
