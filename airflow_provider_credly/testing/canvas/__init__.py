"""A local Canvas Credentials (Badgr) API v2 emulator for tests and demos (stdlib only).

``with run_canvas_emulator(CanvasState.seeded(assertions=2500)) as emu:`` serves ``/o/token`` (password
and refresh grants, short configurable token lifetime), issuers, staff, badge classes and assertions
(``Link`` pagination with ``num``, revoked/expired filtering, duplicate-award refusal, revoke), with the
Credly emulator's fault knobs.
"""

from __future__ import annotations

from airflow_provider_credly.testing.canvas.server import RunningCanvasEmulator, run_canvas_emulator
from airflow_provider_credly.testing.canvas.state import DUPLICATE_AWARD_MESSAGE, CanvasApiError, CanvasState

__all__ = [
    "DUPLICATE_AWARD_MESSAGE",
    "CanvasApiError",
    "CanvasState",
    "RunningCanvasEmulator",
    "run_canvas_emulator",
]
