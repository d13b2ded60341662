"""Local Credly API emulator (standard library only).

Run it with ``python -m airflow_provider_credly.testing.emulator`` or from Python with ``run_emulator`` /
``spawn_emulator_process``. Default ``GET /badges`` sort is ``-created_at``; the high-volume endpoint is
ordered by ``(created_at, id)`` ascending and pages with an opaque seek cursor.
"""

from __future__ import annotations

from .errors import (
    MSG_ALREADY_REPLACED,
    MSG_ALREADY_REVOKED,
    MSG_BLANK,
    MSG_DELETE_REPLACED,
    MSG_DUPLICATE_BADGE,
    MSG_EMAIL_CHANGE_NOT_PENDING,
    MSG_INVALID,
    MSG_REVOKE_REPLACED,
    MSG_TAKEN,
    MSG_TEMPLATE_NOT_FOUND,
    EmulatorRefusal,
    Stats,
)
from .faults import FaultConfig, FaultInjector
from .runner import EmulatorProcess, RunningEmulator, run_emulator, spawn_emulator_process
from .server import EmulatorServer, make_server
from .state import EmulatorState, Event
from .util import FakeClock

__all__ = [
    "MSG_ALREADY_REPLACED",
    "MSG_ALREADY_REVOKED",
    "MSG_BLANK",
    "MSG_DELETE_REPLACED",
    "MSG_DUPLICATE_BADGE",
    "MSG_EMAIL_CHANGE_NOT_PENDING",
    "MSG_INVALID",
    "MSG_REVOKE_REPLACED",
    "MSG_TAKEN",
    "MSG_TEMPLATE_NOT_FOUND",
    "EmulatorProcess",
    "EmulatorRefusal",
    "EmulatorServer",
    "EmulatorState",
    "Event",
    "FakeClock",
    "FaultConfig",
    "FaultInjector",
    "RunningEmulator",
    "Stats",
    "make_server",
    "run_emulator",
    "spawn_emulator_process",
]
