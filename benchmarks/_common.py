"""What the benchmark drivers share: the PostgreSQL they load into and the result line of their workers.

Each driver runs its sides as subprocesses of itself (``--worker ...``); a worker prints one line
``RESULT {json}`` on standard output.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

POSTGRES_DSN = os.environ.get(
    "CREDLY_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)


def worker_result(cmd: list[str], returncode: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    """The ``RESULT`` line of a finished worker, or ``RuntimeError`` with the end of its standard error."""
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"{cmd[:4]} failed ({returncode}): {stderr[-2000:]}")


def postgres_schema() -> str | None:
    """A fresh schema of :data:`POSTGRES_DSN`, or ``None`` (said on standard output) without a server."""
    try:
        import psycopg

        schema = f"bench_{os.getpid()}_{int(time.time() * 1000)}"
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"create schema {schema}")
        return schema
    except Exception as exc:  # no server: the PostgreSQL side is skipped
        print(f"PostgreSQL skipped: {exc}")
        return None


def drop_schema(schema: str) -> None:
    """Drop a schema made by :func:`postgres_schema`, with its tables."""
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {schema} cascade")
