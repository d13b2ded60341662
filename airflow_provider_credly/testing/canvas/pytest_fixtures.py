"""Pytest fixtures for the Canvas Credentials emulator. Import them into a ``conftest.py``:
``from airflow_provider_credly.testing.canvas.pytest_fixtures import canvas_emulator, canvas_conn``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_credly.testing.canvas.server import RunningCanvasEmulator, run_canvas_emulator
from airflow_provider_credly.testing.canvas.state import CanvasState

__all__ = ["canvas_conn", "canvas_emulator"]


@pytest.fixture
def canvas_emulator() -> Iterator[RunningCanvasEmulator]:
    """A running emulator with a small seeded dataset (one issuer, two badge classes, 20 assertions)."""
    with run_canvas_emulator(CanvasState.seeded()) as emulator:
        yield emulator


@pytest.fixture
def canvas_conn(
    canvas_emulator: RunningCanvasEmulator, monkeypatch: pytest.MonkeyPatch
) -> RunningCanvasEmulator:
    """Connection ``canvas_credentials_default`` pointing at the function's emulator, with fast retries."""
    monkeypatch.setenv("AIRFLOW_CONN_CANVAS_CREDENTIALS_DEFAULT", json.dumps(canvas_emulator.connection()))
    return canvas_emulator
