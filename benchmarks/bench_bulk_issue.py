"""Benchmark: bulk issue of N badges against the emulator (own process) rate-limited to R requests/s.

Reports achieved issues/s as a fraction of R (target >= 0.9) and the 429 responses received, for the
adaptive mode (workers halve on 429 and the client waits for Retry-After) and for client-side pacing
(``max_requests_per_second=R``). Run: ``.venv/bin/python benchmarks/bench_bulk_issue.py --badges 10000
--rate-limit 200``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from airflow_provider_credly.client import CredlyClient, RetryPolicy
from airflow_provider_credly.issuing.credly import run_bulk_issue, validate_rows
from airflow_provider_credly.testing import spawn_emulator_process


def rows(n: int, template: str, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "recipient_email": f"{tag}{i}@bench.example.org",
            "issued_to_first_name": "Bench",
            "issued_to_last_name": f"Earner{i}",
            "badge_template_id": template,
            "issued_at": "2026-01-01T00:00:00Z",
        }
        for i in range(n)
    ]


def run(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    with spawn_emulator_process(badges=100, employees=1, rate_limit=args.rate_limit) as emu:
        client = CredlyClient.create(
            emu.token,
            emu.org_id,
            base_url=emu.base_url,
            retry=RetryPolicy(max_attempts=20, backoff_base=0.2, total_timeout=3600),
            pool_size=max(16, args.workers),
        )
        template = client.iter_badges().__next__()["badge_template"]["id"]
        time.sleep(1.5)  # let the token bucket refill after the look-up
        payloads = validate_rows(rows(args.badges, template, mode))
        started = time.monotonic()
        report = run_bulk_issue(
            client,
            payloads,
            workers=args.workers,
            max_requests_per_second=args.rate_limit if mode == "paced" else None,
        )
        elapsed = time.monotonic() - started
        stats = emu.stats()
        client.close()
    counts = report.counts()
    rate = counts["issued"] / elapsed
    return {
        "mode": mode,
        "badges": args.badges,
        "workers": args.workers,
        "rate_limit": args.rate_limit,
        "seconds": round(elapsed, 1),
        "issues_per_s": round(rate, 1),
        "fraction_of_limit": round(rate / args.rate_limit, 3),
        "429_received": report.throttled,
        "emulator_rate_limited": stats.get("rate_limited"),
        "counts": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--badges", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=float, default=200.0, help="emulator limit, requests/s")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--modes", default="adaptive,paced")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # one warning per 429 otherwise
    for mode in args.modes.split(","):
        print(json.dumps(run(args, mode)), flush=True)


if __name__ == "__main__":
    main()
