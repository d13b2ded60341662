"""dlt side of bench_transfer.py and bench_outsider.py: a dlt ``rest_api`` pipeline over Credly's high-volume
cursor into DuckDB.

Runs in its own virtualenv (``benchmarks/.venv-dlt``, see ``requirements-dlt.txt``) so dlt never enters the
project's environment and its peak RSS is measured on its own. Same endpoint, same cursor
(``metadata.next_page_url``), same upsert semantics (``write_disposition="merge"`` on ``id``).

dlt's defaults otherwise (dlt 1.31): extract in this process (one resource, not ``parallelized``), normalize
with ``workers=1`` (in this process, no process pool), load with a pool of up to 20 threads, the ``merge``
strategy ``delete-insert``, and DuckDB's preferred loader file format ``insert_values`` (SQL ``INSERT``
files) unless ``--loader-file-format`` names another (``parquet`` needs pyarrow, pinned in
``requirements-dlt.txt``). dlt's anonymous telemetry is turned off (``RUNTIME__DLTHUB_TELEMETRY=false``):
the machine reaches no such endpoint, and it would cost the run a thread.

Prints ``RESULT {json}``: rows and ``distinct_ids`` of the table, seconds of ``pipeline.run``, peak RSS
(this process or its largest child, should a pool of processes be configured) and the CPUs the process may
run on (the driver pins it with ``taskset``; threads and child processes inherit that).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # after the telemetry setting
import duckdb
from dlt.sources.rest_api import rest_api_source


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--badge-format", default="minimal")
    parser.add_argument("--target", required=True)
    parser.add_argument(
        "--loader-file-format",
        choices=["insert_values", "jsonl", "parquet"],
        help="dlt's loader_file_format (default: dlt's choice for DuckDB, insert_values)",
    )
    args = parser.parse_args()
    source = rest_api_source(
        {
            "client": {
                "base_url": args.base_url.rstrip("/") + "/",
                "auth": {"type": "http_basic", "username": args.token, "password": ""},
                "paginator": {"type": "json_link", "next_url_path": "metadata.next_page_url"},
            },
            "resources": [
                {
                    "name": "credly_badges",
                    "primary_key": "id",
                    "write_disposition": "merge",
                    "endpoint": {
                        "path": f"organizations/{args.org}/high_volume_issued_badge_search",
                        "params": {"badge_format": args.badge_format},
                        "data_selector": "data",
                    },
                }
            ],
        }
    )
    with tempfile.TemporaryDirectory() as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="credly_bench",
            destination=dlt.destinations.duckdb(args.target),
            dataset_name="credly",
            pipelines_dir=pipelines_dir,
        )
        started = time.perf_counter()
        info = pipeline.run(source, loader_file_format=args.loader_file_format)
        seconds = time.perf_counter() - started
        file_formats = sorted(
            {
                job.job_file_info.file_format
                for package in info.load_packages
                for job in package.jobs["completed_jobs"]
            }
        )
    with duckdb.connect(args.target, read_only=True) as con:
        row = con.execute("select count(distinct id), count(*) from credly.credly_badges").fetchone()
        distinct, rows = row if row else (0, 0)
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    out = {
        "rows": int(rows),
        "table_rows": int(rows),
        "distinct_ids": int(distinct),
        "pages": None,
        "seconds": seconds,
        "peak_rss_mb": round(peak_kb / 1024.0, 1),
        "loader_file_formats": file_formats,
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
