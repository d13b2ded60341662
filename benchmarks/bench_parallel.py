"""Benchmark: parallel high-volume cursors (``parallel_cursors=N``) when the wire, not the writer, is the cost.

One emulator process (pinned to CPU 0 where the OS allows) serves ``--badges`` badges; each contender runs in
its own subprocess pinned to CPU 1, so its peak RSS and CPU are its own:

* ``raw``: a plain ``requests`` + ``json`` loop over the cursor with **no** added latency (the wire at its
  fastest: the bar a latency-hiding load is measured against);
* ``N=<n>``: the sliced load the operator runs (``badge_slice_source``: the planner and the cursors on one
  shared ``AdaptiveLimiter``; ``TransferRun.run_sliced`` into a fresh DuckDB file, or with
  ``--destination postgres`` a fresh PostgreSQL schema), with the emulator
  answering every request after ``--latency-ms`` (default 100 ms: the real service's round trip).

Each round (``--repeat``) runs the raw fetch, then every N; a load's ``x raw`` is against its own round's raw
run, and the medians are of the rounds' ratios. A load's time and CPU include the writer's ``close`` (DuckDB's
last checkpoint); its peak RSS is read before the verifying checksum.

Each load's table is checked: row count, distinct ids and a checksum over every typed column, equal for every N.

Usage::

    .venv/bin/python benchmarks/bench_parallel.py                                   # 200k, 50 and 1,000 per page
    .venv/bin/python benchmarks/bench_parallel.py --badges 20000 --cursor-counts 1,8   # quick run
    .venv/bin/python benchmarks/bench_parallel.py --badges 1000000 --page-sizes 1000 --latency-ms 0 \
        --cursor-counts 1,4 --repeat 3                                              # CPU-bound: N=4 / N=1

Takes minutes (N=1 at 50 per page and 100 ms: pages x 0.1 s). Run it on a quiet machine (``uptime``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import (  # noqa: E402 (after the sys.path line)
    POSTGRES_DSN,
    drop_schema,
    postgres_schema,
    worker_result,
)


def _pin(pid: int, cpu: int) -> None:
    """Pin ``pid`` to ``cpu`` when the OS supports it and the CPU exists (no-op otherwise)."""
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(pid, {cpu})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- workers (run in a subprocess) -------------------------------------------------------------------------


def work_raw(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    session = requests.Session()
    session.auth = (args.token, "")
    url: str | None = f"{args.base_url}/organizations/{args.org}/high_volume_issued_badge_search"
    params: dict[str, str] | None = {"badge_format": "minimal"}
    rows = pages = 0
    started = time.perf_counter()
    while url:
        body = json.loads(session.get(url, params=params, timeout=60).content)
        rows += len(body["data"])
        pages += 1
        url, params = body["metadata"]["next_page_url"], None
    return {"rows": rows, "pages": pages, "seconds": time.perf_counter() - started}


def work_sliced(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    import duckdb

    from airflow_provider_credly.client import CredlyClient
    from airflow_provider_credly.client.concurrency import AdaptiveLimiter, observe_throttling
    from airflow_provider_credly.warehouse import BADGES, DuckDBWriter, TableName, TransferRun
    from airflow_provider_credly.warehouse.slices import SlicePlan, badge_slice_source

    logging.basicConfig(level=logging.WARNING)
    n = args.cursors
    client = CredlyClient.create(args.token, args.org, base_url=args.base_url, pool_size=max(16, n))
    table = TableName.parse("credly_badges")
    writer: Any
    if args.destination == "duckdb":
        con = duckdb.connect(args.target, config={"memory_limit": "128MB"})
        writer = DuckDBWriter(con, BADGES, table)
    else:
        import psycopg

        from airflow_provider_credly.warehouse import PostgresWriter

        writer = PostgresWriter(
            psycopg.connect(POSTGRES_DSN, options=f"-c search_path={args.target}"),
            BADGES,
            table,
            raw_json_type=args.raw_json_type,
        )
    limiter = AdaptiveLimiter(n)
    plans: list[SlicePlan] = []
    # what the operator runs with parallel_cursors=n (planner, cursors and limiter)
    source = badge_slice_source(
        client, {}, cursors=n, limiter=limiter, badge_format="minimal", min_badges=1_000, on_plan=plans.append
    )
    started, cpu = time.perf_counter(), _cpu_seconds()
    run = TransferRun(writer=writer, key="bench", unique_keys=True, batch_rows=args.batch_rows)
    with observe_throttling(client.http, limiter.on_throttled):
        if n == 1:
            result = run.run(
                lambda url: client.iter_high_volume_badge_pages(badge_format="minimal", start_url=url),
                "bench",
            )
        else:
            result = run.run_sliced(source, "bench")
    # the writer's close is part of the load: DuckDB's last checkpoint (WAL -> file) runs there
    writer.close()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    # the load's peak, before the verifying checksum (a query over every row) can raise it
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    typed = [c.name for c in BADGES.columns if c.name != "raw"]
    if args.destination == "duckdb":
        checksum_sql = f"SUM(hash({', '.join(typed)})::HUGEINT)"
        check: Any = duckdb.connect(args.target, read_only=True)
    else:  # the same idea in PostgreSQL: a hash of every typed column's text
        import psycopg

        row_text = " || '|' || ".join(f"COALESCE(CAST({c} AS TEXT), '')" for c in typed)
        checksum_sql = f"SUM(('x' || substr(md5({row_text}), 1, 15))::bit(60)::bigint)"
        check = psycopg.connect(POSTGRES_DSN, options=f"-c search_path={args.target}")
    count, distinct, checksum = check.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT id), {checksum_sql} FROM credly_badges"
    ).fetchone()
    check.close()
    return {
        "rows": result.rows,
        "pages": result.pages,
        "slices": result.slices,
        "probes": plans[0].probes if plans else 0,
        "rounds": plans[0].rounds if plans else 0,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_rss_mb,
        "table": [count, distinct, str(checksum)],
    }


def _worker_main(args: argparse.Namespace) -> None:
    out = work_raw(args) if args.worker == "raw" else work_sliced(args)
    out.setdefault("peak_rss_mb", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1))
    print("RESULT " + json.dumps(out), flush=True)


# -- driver --------------------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _pin(proc.pid, 1)
    stdout, stderr = proc.communicate()
    return worker_result(cmd, proc.returncode, stdout, stderr)


def _run_load(
    n: int, rep: int, common: list[str], emu: Any, tmp: str, opts: argparse.Namespace
) -> dict[str, Any]:
    """One sliced load with ``n`` cursors into a fresh DuckDB file or PostgreSQL schema, the latency on."""
    schema = postgres_schema() if opts.destination == "postgres" else None
    if opts.destination == "postgres" and schema is None:
        raise SystemExit("no PostgreSQL reachable at CREDLY_TEST_POSTGRES_DSN")
    target = schema or f"{tmp}/n{n}-{rep}.duckdb"
    emu.set_faults(latency_ms=opts.latency_ms)
    try:
        args = ["--worker", "sliced", "--cursors", str(n), "--target", target]
        args += ["--destination", opts.destination, "--raw-json-type", opts.raw_json_type]
        args += ["--batch-rows", str(opts.batch_rows)] if opts.batch_rows else []
        return _run([*common, *args])
    finally:
        emu.clear_faults()
        if schema:
            drop_schema(schema)


def wire_ceiling(cursors: int, page_size: int, latency_ms: float, raw: dict[str, Any]) -> float:
    """The rows/s that ``cursors`` requests in flight can carry at most: each one costs the added latency
    plus what a page cost the latency-free raw loop of the same round (server, wire and parse).

    A forward cursor has one request in flight, so no load with N cursors beats this, whatever its writer:
    a bar above it (say 0.8x of a raw loop faster than ``N * page_size / (latency + page time) / 0.8``)
    cannot be met by N cursors on that host.
    """
    page_seconds = float(raw["seconds"]) / max(1, int(raw["pages"]))
    return cursors * page_size / (latency_ms / 1000.0 + page_seconds)


def bench_page_size(page_size: int, opts: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_credly.testing.emulator import spawn_emulator_process

    print(
        f"\n== {opts.badges:,} badges, {page_size} per cursor page, {opts.latency_ms} ms per request",
        flush=True,
    )
    out: dict[str, Any] = {}
    with spawn_emulator_process(badges=opts.badges, employees=10, seed=11, hv_page_size=page_size) as emu:
        _pin(emu.process.pid, 0)
        common = [
            sys.executable,
            __file__,
            "--base-url",
            emu.base_url,
            "--token",
            emu.token,
            "--org",
            emu.org_id,
        ]
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in opts.cursor_counts}
        raws: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            # each round: the latency-free raw fetch, then the counts, so every ratio pairs runs of one moment
            # (one raw run per invocation let a single noisy run decide every ratio)
            for rep in range(opts.repeat):
                emu.clear_faults()
                raw = _run([*common, "--worker", "raw"])
                raw["rows_per_second"] = raw["rows"] / raw["seconds"]
                raws.append(raw)
                print(
                    f"   [{rep + 1}/{opts.repeat}] raw (no latency) {raw['rows']:>9,} rows in"
                    f" {raw['seconds']:7.2f} s = {raw['rows_per_second']:>8,.0f} rows/s",
                    flush=True,
                )
                for n in opts.cursor_counts:
                    r = _run_load(n, rep, common, emu, tmp, opts)
                    r["rows_per_second"] = r["rows"] / r["seconds"]
                    r["vs_raw"] = r["rows_per_second"] / raw["rows_per_second"]
                    r["ceiling"] = wire_ceiling(n, page_size, opts.latency_ms, raw)
                    r["vs_ceiling"] = r["rows_per_second"] / r["ceiling"]
                    r["ceiling_vs_raw"] = r["ceiling"] / raw["rows_per_second"]
                    runs[n].append(r)
                    print(
                        f"   [{rep + 1}/{opts.repeat}] N={n:<3} {r['rows']:>9,} rows in {r['seconds']:7.2f} s"
                        f" = {r['rows_per_second']:>8,.0f} rows/s ({r['vs_raw']:.2f}x raw; ceiling"
                        f" {r['ceiling']:,.0f} rows/s = {r['ceiling_vs_raw']:.2f}x raw, reached"
                        f" {r['vs_ceiling']:.0%}), {r['slices']} slices / {r['probes']} probes in {r['rounds']}"
                        f" rounds, CPU {r['cpu_seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB,"
                        f" table {r['table']}",
                        flush=True,
                    )
        out["raw"] = {
            "rows_per_second": statistics.median(r["rows_per_second"] for r in raws),
            "seconds": statistics.median(r["seconds"] for r in raws),
            "runs": raws,
        }
        for n, n_runs in runs.items():
            out[f"N={n}"] = {
                "rows_per_second": statistics.median(r["rows_per_second"] for r in n_runs),
                "vs_raw": statistics.median(r["vs_raw"] for r in n_runs),  # of each round's own raw run
                "vs_ceiling": statistics.median(r["vs_ceiling"] for r in n_runs),
                "ceiling_vs_raw": statistics.median(r["ceiling_vs_raw"] for r in n_runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in n_runs),
                "runs": n_runs,
            }
            if 1 in runs:  # the median of each round's ratio to the N=1 load of the same round
                out[f"N={n}"]["vs_n1"] = statistics.median(
                    r["rows_per_second"] / one["rows_per_second"]
                    for r, one in zip(n_runs, runs[1], strict=True)
                )
            if opts.repeat > 1:
                m = out[f"N={n}"]
                ratio = f", {m['vs_n1']:.3f}x N=1 (median of the rounds' ratios)" if "vs_n1" in m else ""
                print(
                    f"   median N={n:<3} {m['rows_per_second']:>8,.0f} rows/s ({m['vs_raw']:.2f}x raw, ceiling"
                    f" {m['ceiling_vs_raw']:.2f}x raw, reached {m['vs_ceiling']:.0%}){ratio},"
                    f" peak RSS {m['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    tables = [r["table"] for k, v in out.items() if k.startswith("N=") for r in v["runs"]]
    out["same_table"] = all(t == tables[0] for t in tables)
    print(f"   same final table for every N: {out['same_table']}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=("raw", "sliced"))
    parser.add_argument("--base-url")
    parser.add_argument("--token")
    parser.add_argument("--org")
    parser.add_argument("--target")
    parser.add_argument("--cursors", type=int, default=1, help="(worker) cursors of this load")
    parser.add_argument("--badges", type=int, default=200_000)
    parser.add_argument("--page-sizes", default="50,1000")
    parser.add_argument("--cursor-counts", default="1,8,16")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--destination",
        choices=("duckdb", "postgres"),
        default="duckdb",
        help="where the loads write: a fresh DuckDB file or a fresh schema of CREDLY_TEST_POSTGRES_DSN",
    )
    parser.add_argument("--raw-json-type", default="json", help="the PostgreSQL raw column's type")
    parser.add_argument(
        "--batch-rows", type=int, default=None, help="the loads' batch_rows (default: the operators')"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every cursor count, interleaved (medians reported)"
    )
    parser.add_argument("--json", help="write the figures here")
    opts = parser.parse_args()
    if opts.worker:
        _worker_main(opts)
        return 0
    opts.cursor_counts = [int(x) for x in opts.cursor_counts.split(",")]
    print(f"load average before: {os.getloadavg()}", flush=True)
    figures = {int(p): bench_page_size(int(p), opts) for p in opts.page_sizes.split(",")}
    print(f"load average after: {os.getloadavg()}", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
