"""dlt side of bench_transfer.py: a dlt ``rest_api`` pipeline over Credly's high-volume cursor into DuckDB.

Runs in its own virtualenv (``benchmarks/.venv-dlt``, see ``requirements-dlt.txt``) so dlt never enters the
project's environment and its peak RSS is measured on its own. Same endpoint, same cursor
(``metadata.next_page_url``), same upsert semantics (``write_disposition="merge"`` on ``id``).
Prints ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

import dlt
import duckdb
from dlt.sources.rest_api import rest_api_source


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--badge-format", default="minimal")
    parser.add_argument("--target", required=True)
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
        pipeline.run(source)
        seconds = time.perf_counter() - started
    with duckdb.connect(args.target, read_only=True) as con:
        row = con.execute("select count(*) from credly.credly_badges").fetchone()
        rows = row[0] if row else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        "RESULT "
        + json.dumps({"rows": rows, "pages": None, "seconds": seconds, "peak_rss_mb": round(peak, 1)})
    )


if __name__ == "__main__":
    main()
