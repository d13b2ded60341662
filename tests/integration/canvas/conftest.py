"""Canvas Credentials emulator fixtures (``canvas_emulator``, ``canvas_conn``)."""

from __future__ import annotations

from airflow_provider_credly.testing.canvas.pytest_fixtures import canvas_conn, canvas_emulator

__all__ = ["canvas_conn", "canvas_emulator"]
