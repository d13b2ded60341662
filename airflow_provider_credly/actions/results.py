"""Per-item outcomes of bulk badge actions (revoke, delete, replace; Credly and Canvas Credentials alike):
the result type, the worker-pool runner and the XCom summary. Pure Python: no Airflow import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_credly.client.concurrency import run_pool


@dataclass(frozen=True)
class ActionResult:
    """What happened to one requested badge.

    :ivar badge_id: the badge id as requested.
    :ivar outcome: ``revoked``, ``already_revoked``, ``deleted``, ``already_deleted``, ``replaced``,
        ``already_replaced`` or ``failed``.
    :ivar acted_on: the badge actually acted on (the current version when a replacement was followed).
    :ivar new_badge_id: for replace, the new badge; for a replaced badge, its current version.
    :ivar detail: why it failed, or a note.
    :ivar error: the API error behind a failure, when one (a retry cannot fix a 401 or a 422).
    :ivar attempted: ``False`` for an id not attempted because the run stopped after too many failures.
    """

    badge_id: str
    outcome: str
    acted_on: str | None = None
    new_badge_id: str | None = None
    detail: str | None = None
    error: Exception | None = field(default=None, compare=False, repr=False)
    attempted: bool = True

    @property
    def ok(self) -> bool:
        """Whether the badge is now in the requested state."""
        return self.outcome != "failed"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict without empty keys."""
        out = {"badge_id": self.badge_id, "outcome": self.outcome}
        for key in ("acted_on", "new_badge_id", "detail"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def run_actions(
    badge_ids: Sequence[str],
    action: Callable[[int], ActionResult],
    *,
    workers: int = 4,
    max_failures: int = 0,
) -> list[ActionResult]:
    """Run ``action(i)`` for every id on a few threads; stops taking new ids once failures exceed
    ``max_failures`` (ids not attempted are reported ``failed`` with "not attempted").
    """
    results: list[ActionResult | None] = [None] * len(badge_ids)
    stop = threading.Event()
    lock = threading.Lock()
    failures = 0

    def work(i: int) -> None:
        nonlocal failures
        result = action(i)
        with lock:
            results[i] = result
            if not result.ok:
                failures += 1
                if failures > max_failures:
                    stop.set()

    run_pool(len(badge_ids), work, workers=workers, stop=stop)
    return [
        r
        or ActionResult(
            badge_ids[i],
            "failed",
            None,
            None,
            "not attempted: stopped after too many failures",
            attempted=False,
        )
        for i, r in enumerate(results)
    ]


def failure_errors(results: Sequence[ActionResult]) -> list[Exception | None]:
    """The error behind every attempted failure (``None`` where its cause is unknown)."""
    return [r.error for r in results if not r.ok and r.attempted]


def actions_xcom(results: Sequence[ActionResult], max_rows: int = 1000) -> dict[str, Any]:
    """``{"counts": {outcome: n}, "failed": n, "total": n, "results": [...], "results_truncated": bool}``,
    listing failed results first when capped.
    """
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    listed = sorted(results, key=lambda r: r.ok)[:max_rows]
    return {
        "counts": counts,
        "failed": counts.get("failed", 0),
        "total": len(results),
        "results": [r.as_dict() for r in listed],
        "results_truncated": len(results) > len(listed),
    }
