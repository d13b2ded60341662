"""Benchmark, the outsider's setup: Credly high-volume cursor -> warehouse against a plain ``requests`` loop.

Reproduces the side-by-side measurement of issue 12 (section 0): one emulator process pinned to CPU 0
(``spawn_emulator_process``, then ``sched_setaffinity``), every measured process pinned to CPU 1, the
high-volume cursor in ``badge_format=minimal`` at ``--page-size`` records per page (1,000 and 50), sides
interleaved and repeated (medians of ``--repeat`` runs), every run verified (distinct ids == badges):

* ``raw``: a plain ``requests`` + ``json`` loop following ``metadata.next_page_url`` (not this project's
  client), collecting the ids only;
* ``duckdb``: ``run_transfer`` (the operator's machinery) into a fresh DuckDB file (``memory_limit``);
* ``postgres``: the same into a fresh schema of the PostgreSQL at ``CREDLY_TEST_POSTGRES_DSN``; its figures
  include the CPU of the PostgreSQL backend serving the load (``/proc/<pg_backend_pid()>/stat`` before and
  after, so the server must run on this machine), ``raw`` as ``json`` (the default); ``postgres-jsonb`` (not
  among the default ``--sides``) with ``raw_json_type="jsonb"``;
* ``dlt`` and ``dlt-parquet`` (not among the default ``--sides``: minutes at 1M): a dlt ``rest_api`` pipeline
  over the same cursor into a fresh DuckDB file, ``write_disposition="merge"`` on ``id`` as ours
  (``benchmarks/bench_dlt_load.py`` in its own virtualenv ``benchmarks/.venv-dlt``, see
  ``requirements-dlt.txt``; skipped if missing). ``dlt`` keeps dlt's defaults (dlt 1.31): extract and normalize
  in the one process (normalize ``workers=1``, no process pool), load on a pool of up to 20 threads, merge
  strategy ``delete-insert``, and DuckDB's preferred loader file format, ``insert_values``; ``dlt-parquet``
  sets ``loader_file_format="parquet"`` (pyarrow), dlt's fastest documented setting. The whole process tree
  (threads, any pool process) stays on CPU 1: ``taskset`` is inherited, and the worker reports its affinity.
  Each dlt side runs once per volume whatever ``--repeat`` (in the first repetition), its ratios paired with
  the raw run just before it and with our DuckDB run of the same repetition ("DuckDB transfer Nx faster").

Each side reports wall seconds, the process's CPU (user + sys, ``RUSAGE_CHILDREN`` of the driver, less the
CPU of the verifying ``COUNT(DISTINCT id)``, which is the benchmark's; start-up counts) and peak RSS; a
transfer's wall time includes the writer's ``close`` (DuckDB's last checkpoint). Ratios are medians of the
paired ratios to the raw run just before (the machine is shared).

Usage::

    .venv/bin/python benchmarks/bench_outsider.py --badges 100000 1000000 --page-size 1000 50 --repeat 3
    .venv/bin/python benchmarks/bench_outsider.py --badges 100000 --no-store-raw   # without the raw column
    .venv/bin/python benchmarks/bench_outsider.py --badges 1000000 --page-size 1000 --odd-values-rate 0.01
    .venv/bin/python benchmarks/bench_outsider.py --badges 100000 --sides raw duckdb postgres dlt dlt-parquet
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

EMULATOR_CPU = 0
MEASURED_CPU = 1
DLT_PYTHON = ROOT / "benchmarks" / ".venv-dlt" / "bin" / "python"
DLT_SCRIPT = ROOT / "benchmarks" / "bench_dlt_load.py"
DLT_SIDES = {"dlt": None, "dlt-parquet": "parquet"}  # side -> --loader-file-format (None: dlt's default)
SIDES = ["raw", "duckdb", "postgres", "postgres-jsonb", *DLT_SIDES]
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process of this machine (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# -- workers (each in its own process, pinned to MEASURED_CPU) ----------------------------------------------


def work_raw(args: argparse.Namespace) -> dict[str, Any]:
    """The outsider's baseline: ``requests`` + ``json``, no writes; the ids kept to verify the run."""
    import requests

    session = requests.Session()
    session.auth = (args.token, "")  # Credly: HTTP Basic, the token as the user name
    url: str | None = f"{args.base_url}/organizations/{args.org}/high_volume_issued_badge_search"
    params: dict[str, str] | None = {"badge_format": "minimal"}
    ids: set[str] = set()
    rows = pages = 0
    started = time.perf_counter()
    while url:
        resp = session.get(url, params=params, timeout=60)
        resp.raise_for_status()
        body = json.loads(resp.content)
        for record in body["data"]:
            ids.add(record["id"])
        rows += len(body["data"])
        pages += 1
        url, params = body["metadata"]["next_page_url"], None
    return {"rows": rows, "pages": pages, "distinct_ids": len(ids), "seconds": time.perf_counter() - started}


def work_transfer(args: argparse.Namespace) -> dict[str, Any]:
    """``run_transfer`` into DuckDB or PostgreSQL, with the project's client (as the operator runs it)."""
    import logging

    from airflow_provider_credly.client import CredlyClient
    from airflow_provider_credly.warehouse import (
        BADGES,
        DuckDBWriter,
        PostgresWriter,
        TableName,
        run_transfer,
    )

    logging.basicConfig(level=logging.WARNING)
    client = CredlyClient.create(args.token, args.org, base_url=args.base_url)
    table = TableName.parse("credly_badges")
    backend_pid = None
    if args.worker == "duckdb":
        import duckdb

        config = {"memory_limit": args.duckdb_memory_limit} if args.duckdb_memory_limit else {}
        config.update(s.split("=", 1) for s in args.duckdb_setting)
        conn: Any = duckdb.connect(args.target, config=config)
        writer: Any = DuckDBWriter(conn, BADGES, table, store_raw=args.store_raw)
    else:
        import psycopg

        conn = psycopg.connect(POSTGRES_DSN, options=f"-c search_path={args.target}")
        backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.commit()
        writer = PostgresWriter(
            conn, BADGES, table, store_raw=args.store_raw, raw_json_type=args.raw_json_type
        )

    def open_pages(start_url: str | None) -> Any:
        return client.iter_high_volume_badge_pages(badge_format="minimal", start_url=start_url)

    db_cpu0 = _proc_cpu_seconds(backend_pid) if backend_pid else 0.0
    started = time.perf_counter()
    result = run_transfer(
        open_pages=open_pages,
        writer=writer,
        key="bench",
        fingerprint="bench",
        batch_rows=args.batch_rows,
        unique_keys=True,
    )
    # the writer's close is part of the load: DuckDB's last checkpoint (WAL -> file) runs there
    close_started = time.perf_counter()
    writer.close()
    out: dict[str, Any] = {"rows": result.rows, "pages": result.pages}
    out["close_seconds"] = time.perf_counter() - close_started
    out["seconds"] = time.perf_counter() - started
    # the load's peak, before the verifying COUNT(DISTINCT id) (a hash of every id) can raise it
    out["peak_rss_mb"] = _peak_rss_mb()
    if backend_pid:
        out["db_cpu_seconds"] = _proc_cpu_seconds(backend_pid) - db_cpu0
    # the verifying query (on a new connection) is the benchmark's, not the load's: its CPU is taken off
    verify_started = time.process_time()
    if args.worker == "duckdb":
        check: Any = duckdb.connect(args.target, read_only=True)
    else:
        check = psycopg.connect(POSTGRES_DSN, options=f"-c search_path={args.target}")
    (distinct, total) = check.execute(f"SELECT COUNT(DISTINCT id), COUNT(*) FROM {table}").fetchone()
    check.close()
    out["verify_cpu_seconds"] = time.process_time() - verify_started
    out.update(distinct_ids=int(distinct), table_rows=int(total))
    return out


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


WORKERS = {"raw": work_raw, "duckdb": work_transfer, "postgres": work_transfer}


def _worker_main(args: argparse.Namespace) -> None:
    out = WORKERS[args.worker](args)
    out.setdefault("peak_rss_mb", _peak_rss_mb())
    print("RESULT " + json.dumps(out), flush=True)


# -- driver --------------------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> dict[str, Any]:
    """Run a worker pinned to MEASURED_CPU; its CPU is the driver's RUSAGE_CHILDREN difference."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        ["taskset", "-c", str(MEASURED_CPU), *cmd], capture_output=True, text=True, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = worker_result(cmd, proc.returncode, proc.stdout, proc.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["cpu_seconds"] = cpu - result.get("verify_cpu_seconds", 0.0)
    return result


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def bench(n: int, page_size: int, opts: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_credly.testing.emulator import spawn_emulator_process

    print(f"\n== {n:,} badges, {page_size} per page (load {_load()})", flush=True)
    with spawn_emulator_process(
        badges=n, employees=10, seed=11, hv_page_size=page_size, odd_values_rate=opts.odd_values_rate
    ) as emu:
        os.sched_setaffinity(emu.process.pid, {EMULATOR_CPU})
        common = [sys.executable, __file__, "--base-url", emu.base_url, "--token", emu.token]
        common += ["--org", emu.org_id, *(["--batch-rows", str(opts.batch_rows)] if opts.batch_rows else [])]
        common += ["--duckdb-memory-limit", opts.duckdb_memory_limit]
        common += [f"--duckdb-setting={setting}" for setting in opts.duckdb_setting]
        common += [] if opts.store_raw else ["--no-store-raw"]
        runs: dict[str, list[dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(opts.repeat):
                for side in opts.sides:
                    if side in DLT_SIDES and rep > 0:
                        continue  # minutes at 1M: once per volume
                    emu_cpu0 = _proc_cpu_seconds(emu.process.pid)
                    r = _run_side(side, common, emu, f"{tmp}/{side}{rep}.duckdb")
                    if r is None:
                        continue
                    if r["distinct_ids"] != n:
                        raise RuntimeError(f"{side}: {r['distinct_ids']:,} distinct ids, expected {n:,}")
                    r["rep"] = rep
                    r["load"] = _load()
                    r["emulator_cpu_seconds"] = _proc_cpu_seconds(emu.process.pid) - emu_cpu0
                    runs.setdefault(side, []).append(r)
                    db = f", db CPU {r['db_cpu_seconds']:6.2f} s" if "db_cpu_seconds" in r else ""
                    print(
                        f"   [{rep + 1}/{opts.repeat}] {side:<11} {r['rows']:>9,} rows in {r['seconds']:7.2f} s"
                        f" = {r['rows'] / r['seconds']:>8,.0f} rows/s, CPU {r['cpu_seconds']:6.2f} s{db},"
                        f" emulator CPU {r['emulator_cpu_seconds']:6.2f} s,"
                        f" peak RSS {r['peak_rss_mb']:6.1f} MB (load {r['load']})",
                        flush=True,
                    )
    return _summarise(runs)


def _run_side(side: str, common: list[str], emu: Any, target: str) -> dict[str, Any] | None:
    if side == "raw":
        return _run([*common, "--worker", "raw"])
    if side == "duckdb":
        return _run([*common, "--worker", "duckdb", "--target", target])
    if side in ("postgres", "postgres-jsonb"):
        schema = postgres_schema()
        if schema is None:
            return None
        raw_type = ["--raw-json-type", "jsonb"] if side == "postgres-jsonb" else []
        try:
            return _run([*common, "--worker", "postgres", "--target", schema, *raw_type])
        finally:
            drop_schema(schema)
    if side in DLT_SIDES:
        if not DLT_PYTHON.exists():
            print(f"   {side} skipped: {DLT_PYTHON} missing (see benchmarks/requirements-dlt.txt)")
            return None
        cmd = [str(DLT_PYTHON), str(DLT_SCRIPT), "--base-url", emu.base_url, "--token", emu.token]
        cmd += ["--org", emu.org_id, "--badge-format", "minimal", "--target", target]
        file_format = DLT_SIDES[side]
        r = _run([*cmd, *(["--loader-file-format", file_format] if file_format else [])])
        if r["cpus"] != [MEASURED_CPU]:
            raise RuntimeError(f"{side} ran on CPUs {r['cpus']}, expected [{MEASURED_CPU}]")
        return r
    raise ValueError(side)


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per side, and each side's median of its ratios to the raw run just before it.

    The dlt sides are also paired with the DuckDB run of their repetition: ``duckdb_faster_wall`` and
    ``duckdb_faster_cpu`` are dlt's figure over DuckDB's (medians, should dlt run more than once).
    """
    out: dict[str, Any] = {}
    raw = runs.get("raw", [])
    for side, side_runs in runs.items():
        res: dict[str, Any] = {
            "seconds": round(statistics.median(r["seconds"] for r in side_runs), 3),
            "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in side_runs), 3),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in side_runs),
            "rows_per_second": round(statistics.median(r["rows"] / r["seconds"] for r in side_runs)),
            "runs": side_runs,
        }
        if any("db_cpu_seconds" in r for r in side_runs):
            res["db_cpu_seconds"] = round(statistics.median(r["db_cpu_seconds"] for r in side_runs), 3)
        if side != "raw" and raw:
            pairs = list(zip(side_runs, raw, strict=False))
            res["wall_vs_raw"] = round(statistics.median(w["seconds"] / r["seconds"] for w, r in pairs), 3)
            res["cpu_vs_raw"] = round(
                statistics.median(w["cpu_seconds"] / r["cpu_seconds"] for w, r in pairs), 3
            )
        duckdb_by_rep = {r["rep"]: r for r in runs.get("duckdb", [])}
        duck_pairs = [(w, duckdb_by_rep[w["rep"]]) for w in side_runs if w["rep"] in duckdb_by_rep]
        if side in DLT_SIDES and duck_pairs:
            res["duckdb_faster_wall"] = round(
                statistics.median(w["seconds"] / d["seconds"] for w, d in duck_pairs), 2
            )
            res["duckdb_faster_cpu"] = round(
                statistics.median(w["cpu_seconds"] / d["cpu_seconds"] for w, d in duck_pairs), 2
            )
        out[side] = res
    return out


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
    parser.add_argument("--page-size", type=int, nargs="+", default=[1000, 50])
    parser.add_argument(
        "--batch-rows", type=int, default=None, help="the operators' batch_rows (default: theirs)"
    )
    parser.add_argument("--raw-json-type", default="json", help="the PostgreSQL raw column's type")
    parser.add_argument("--duckdb-memory-limit", default="128MB")
    parser.add_argument(
        "--duckdb-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another DuckDB setting of the connection (the connection extra's settings), repeatable",
    )
    parser.add_argument(
        "--no-store-raw", dest="store_raw", action="store_false", help="transfers without the raw column"
    )
    parser.add_argument(
        "--sides",
        nargs="+",
        choices=SIDES,
        default=["raw", "duckdb", "postgres"],
        help="dlt and dlt-parquet (slow) only when asked for; each runs once per volume",
    )
    parser.add_argument(
        "--odd-values-rate",
        type=float,
        default=0.0,
        help="the emulator's share of records with odd values, e.g. 0.01: names beyond Latin-1 (non-BMP letters,"
        " an emoji) in most pages, as real data has them, other timestamp shapes, a number for a text",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write all figures to this file")
    opts = parser.parse_args()
    if opts.worker:
        _worker_main(opts)
        return 0
    figures: dict[str, Any] = {}
    for page_size in opts.page_size:
        for n in opts.badges:
            figures[f"{n}@{page_size}"] = res = bench(n, page_size, opts)
            for side, r in res.items():
                vs = f", wall {r['wall_vs_raw']}x / CPU {r['cpu_vs_raw']}x of raw" if side != "raw" else ""
                db = f", db CPU {r['db_cpu_seconds']} s" if "db_cpu_seconds" in r else ""
                print(
                    f"   median {side:<11} {r['seconds']:.2f} s, {r['rows_per_second']:,} rows/s, "
                    f"CPU {r['cpu_seconds']} s{db}{vs}, peak RSS {r['peak_rss_mb']:.0f} MB"
                )
                if "duckdb_faster_wall" in r:
                    print(
                        f"   DuckDB transfer {r['duckdb_faster_wall']}x faster than {side} (wall), "
                        f"{r['duckdb_faster_cpu']}x less CPU"
                    )
            if opts.json:
                Path(opts.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
