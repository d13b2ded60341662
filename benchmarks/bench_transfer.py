"""Benchmark: Credly high-volume cursor -> warehouse, side by side on one emulator.

For each volume (default 100,000 and 1,000,000 badges, ``badge_format=minimal``) one emulator process is
started (``spawn_emulator_process``) and each contender runs in its own subprocess so its peak RSS is its own:

* ``raw``: the cursor fetch + JSON parse with no writes (``CredlyClient.iter_high_volume_badge_pages``);
* ``duckdb``: the transfer machinery the operator runs (pipeline + checkpoints + DuckDB bulk merge) into a
  fresh DuckDB file;
* ``postgres``: the same into a fresh schema of the PostgreSQL at 127.0.0.1:5432 (skipped if unreachable);
* ``dlt``: a dlt ``rest_api`` pipeline over the same cursor into DuckDB (``benchmarks/bench_dlt_load.py`` in
  its own virtualenv, ``benchmarks/.venv-dlt``; skipped if missing).

Usage::

    .venv/bin/python benchmarks/bench_transfer.py                  # 100k and 1M
    .venv/bin/python benchmarks/bench_transfer.py --badges 20000   # quick run

Prints a table and writes the figures as JSON (``--json``).
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

from _common import POSTGRES_DSN, drop_schema, postgres_schema, worker_result  # noqa: E402 (after the sys.path line)

DLT_PYTHON = ROOT / "benchmarks" / ".venv-dlt" / "bin" / "python"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _client(args: argparse.Namespace) -> Any:
    from airflow_provider_credly.client import CredlyClient

    return CredlyClient.create(args.token, args.org, base_url=args.base_url)


# -- workers (run in a subprocess) -------------------------------------------------------------------------


def work_raw(args: argparse.Namespace) -> dict[str, Any]:
    client = _client(args)
    rows = pages = 0
    started = time.perf_counter()
    for page in client.iter_high_volume_badge_pages(badge_format=args.badge_format):
        rows += len(page.items)
        pages += 1
    return {"rows": rows, "pages": pages, "seconds": time.perf_counter() - started}


def work_transfer(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from airflow_provider_credly.warehouse import (
        BADGES,
        DuckDBWriter,
        PostgresWriter,
        TableName,
        run_transfer,
    )

    logging.basicConfig(level=logging.WARNING)
    client = _client(args)
    table = TableName.parse("credly_badges")
    if args.worker == "duckdb":
        import duckdb

        config = {"memory_limit": args.duckdb_memory_limit} if args.duckdb_memory_limit else {}
        if os.environ.get("BENCH_DUCKDB_CHECKPOINT"):
            config["checkpoint_threshold"] = os.environ["BENCH_DUCKDB_CHECKPOINT"]
        if os.environ.get("BENCH_DUCKDB_THREADS"):
            config["threads"] = int(os.environ["BENCH_DUCKDB_THREADS"])
        writer: Any = DuckDBWriter(duckdb.connect(args.target, config=config), BADGES, table)
    else:
        import psycopg

        writer = PostgresWriter(
            psycopg.connect(POSTGRES_DSN, options=f"-c search_path={args.target}"), BADGES, table
        )

    def open_pages(start_url: str | None) -> Any:
        return client.iter_high_volume_badge_pages(badge_format=args.badge_format, start_url=start_url)

    def load(key: str) -> tuple[Any, float]:
        started = time.perf_counter()
        result = run_transfer(
            open_pages=open_pages,
            writer=writer,
            key=key,
            fingerprint="bench",
            queue_size=args.queue,
            batch_rows=args.batch_rows,
            unique_keys=not args.keep_delete,
        )
        return result, time.perf_counter() - started

    out: dict[str, Any] = {}
    if args.reload:  # first load untimed; the measured load upserts every badge into the filled table
        _, out["first_load_seconds"] = load("bench-first")
    result, seconds = load("bench")
    out.update(rows=result.rows, pages=result.pages, seconds=seconds, table_rows=writer.count())
    writer.close()
    return out


WORKERS = {"raw": work_raw, "duckdb": work_transfer, "postgres": work_transfer}


def _worker_main(args: argparse.Namespace) -> None:
    out = WORKERS[args.worker](args)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    out["airflow_imported"] = "airflow" in sys.modules  # same footing for every side: no Airflow import
    print("RESULT " + json.dumps(out), flush=True)


# -- driver --------------------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return worker_result(cmd, proc.returncode, proc.stdout, proc.stderr)


def bench_volume(n: int, opts: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_credly.testing.emulator import spawn_emulator_process

    print(f"\n== {n:,} badges ({opts.badge_format}, {opts.page_size} per cursor page)", flush=True)
    t0 = time.perf_counter()
    with spawn_emulator_process(badges=n, employees=10, seed=11, hv_page_size=opts.page_size) as emu:
        print(f"   emulator ready in {time.perf_counter() - t0:.1f} s", flush=True)
        common = [
            sys.executable,
            __file__,
            "--base-url",
            emu.base_url,
            "--token",
            emu.token,
            "--org",
            emu.org_id,
            "--badge-format",
            opts.badge_format,
            "--queue",
            str(opts.queue),
            *(["--batch-rows", str(opts.batch_rows)] if opts.batch_rows else []),
            "--duckdb-memory-limit",
            opts.duckdb_memory_limit,
            *(["--keep-delete"] if opts.keep_delete else []),
            *(["--reload"] if opts.reload else []),
        ]
        runs: dict[str, list[dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(opts.repeat):
                for side in opts.sides:
                    if side == "dlt" and rep > 0:
                        continue  # ~15x slower than the others: once is enough
                    r = _run_side(side, common, emu, opts, f"{tmp}/{side}{rep}.duckdb")
                    if r:
                        runs.setdefault(side, []).append(r)
                        print(
                            f"   [{rep + 1}/{opts.repeat}] {side:<9} {r['rows']:>9,} rows in {r['seconds']:7.2f} s"
                            f" = {r['rows'] / r['seconds']:>9,.0f} rows/s, peak RSS {r['peak_rss_mb']:6.1f} MB",
                            flush=True,
                        )
    return _summarise(runs)


def _run_side(side: str, common: list[str], emu: Any, opts: argparse.Namespace, target: str) -> Any:
    if side == "raw":
        return _run([*common, "--worker", "raw"])
    if side == "duckdb":
        return _run([*common, "--worker", "duckdb", "--target", target])
    if side == "postgres":
        schema = postgres_schema()
        if schema is None:
            return None
        try:
            return _run([*common, "--worker", "postgres", "--target", schema])
        finally:
            drop_schema(schema)
    if side == "dlt":
        if not DLT_PYTHON.exists():
            print(f"   dlt skipped: {DLT_PYTHON} missing (see benchmarks/requirements-dlt.txt)")
            return None
        script = str(ROOT / "benchmarks" / "bench_dlt_load.py")
        return _run(
            [str(DLT_PYTHON), script, "--base-url", emu.base_url, "--token", emu.token,
             "--org", emu.org_id, "--badge-format", opts.badge_format, "--target", target]
        )  # fmt: skip
    raise ValueError(side)


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median seconds per side, max peak RSS, and each side's median of its per-repetition ratios to the raw
    fetch run just before it (pairs taken minutes apart would compare different machine loads)."""
    results: dict[str, Any] = {}
    for side, side_runs in runs.items():
        results[side] = {
            "rows": side_runs[0]["rows"],
            "seconds": round(statistics.median(r["seconds"] for r in side_runs), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in side_runs),
            "runs_seconds": [round(r["seconds"], 3) for r in side_runs],
            "runs_peak_rss_mb": [r["peak_rss_mb"] for r in side_runs],
        }
    raw_runs = runs.get("raw", [])
    dlt = results.get("dlt", {}).get("seconds")
    for side in ("duckdb", "postgres"):
        if side not in results:
            continue
        pairs = [w["seconds"] / r["seconds"] for w, r in zip(runs[side], raw_runs, strict=False)]
        if pairs:
            results[side]["ratio_vs_raw"] = round(statistics.median(pairs), 3)
            results[side]["runs_ratio_vs_raw"] = [round(x, 3) for x in pairs]
        if dlt:
            results[side]["dlt_over_this"] = round(dlt / results[side]["seconds"], 2)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--base-url")
    parser.add_argument("--token")
    parser.add_argument("--org")
    parser.add_argument("--target")
    parser.add_argument("--badges", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--badge-format", default="minimal", choices=["minimal", "default"])
    parser.add_argument("--page-size", type=int, default=50, help="emulator cursor page size (Credly: 50)")
    parser.add_argument("--queue", type=int, default=2, help="write batches fetched ahead of the writer")
    parser.add_argument(
        "--batch-rows", type=int, default=None, help="records per write batch (default: the operators')"
    )
    parser.add_argument(
        "--duckdb-memory-limit",
        default="",
        help="DuckDB memory_limit (the DuckDB connection extra of the same name)",
    )
    parser.add_argument(
        "--keep-delete",
        action="store_true",
        help="delete each batch's ids even into an empty table (run_transfer unique_keys=False)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="measure a second full load into the table the first one filled (an upsert of every row)",
    )
    parser.add_argument("--sides", nargs="+", default=["raw", "duckdb", "postgres", "dlt"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions of each side (medians are reported; dlt runs once)"
    )
    parser.add_argument("--json", help="write all figures to this file")
    opts = parser.parse_args()
    if opts.worker:
        _worker_main(opts)
        return 0
    figures = {str(n): bench_volume(n, opts) for n in opts.badges}
    print("\n== summary")
    for n, res in figures.items():
        for side in ("duckdb", "postgres"):
            if side in res:
                r = res[side]
                print(
                    f"   {int(n):>9,} {side:<9} median {r['seconds']:.2f} s, transfer/raw = "
                    f"{r.get('ratio_vs_raw', '?')}x (runs {r.get('runs_ratio_vs_raw')}), "
                    f"dlt/transfer = {r.get('dlt_over_this', '?')}x, peak RSS {r['peak_rss_mb']:.0f} MB"
                )
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
