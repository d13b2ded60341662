"""Pytest fixtures for the local emulators: ``credly_emulator``, ``credly_emulator_factory``,
``canvas_emulator`` and ``canvas_conn``.

Opt-in, so installing the provider adds nothing to a user's other test suites: load it with
``pytest -p airflow_provider_credly.testing.pytest_plugin`` (or ``addopts``), or in a top-level conftest.py
with ``pytest_plugins = ["airflow_provider_credly.testing.pytest_plugin"]``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_credly.testing.canvas.pytest_fixtures import canvas_conn, canvas_emulator
from airflow_provider_credly.testing.emulator import EmulatorState, RunningEmulator, run_emulator
from airflow_provider_credly.testing.emulator.faults import FAULT_NAMES

__all__ = ["canvas_conn", "canvas_emulator", "credly_emulator", "credly_emulator_factory"]

_STATE_ARGS = frozenset(inspect.signature(EmulatorState).parameters)


@pytest.fixture
def credly_emulator() -> Iterator[RunningEmulator]:
    """A running emulator with a small dataset (120 badges, 30 employees) and no faults."""
    with run_emulator(EmulatorState(seed=1, badges=120, employees=30)) as emulator:
        yield emulator


@pytest.fixture
def credly_emulator_factory() -> Iterator[Callable[..., RunningEmulator]]:
    """``factory(badges=..., seed=..., error_rate=..., state=..., host=..., port=...)`` -> running emulator.

    Keyword arguments of ``EmulatorState`` build the state (unless ``state`` is given), fault names
    (see ``FaultConfig``; ``fault_seed`` for its ``seed``) configure faults. Stopped at teardown.
    """
    started: list[RunningEmulator] = []

    def factory(
        *, state: EmulatorState | None = None, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
    ) -> RunningEmulator:
        unknown = set(kwargs) - _STATE_ARGS - FAULT_NAMES - {"fault_seed"}
        if unknown:
            raise TypeError(f"unknown emulator option(s): {', '.join(sorted(unknown))}")
        state_args = {k: v for k, v in kwargs.items() if k in _STATE_ARGS}
        faults = {k: v for k, v in kwargs.items() if k in FAULT_NAMES and k not in _STATE_ARGS}
        if "fault_seed" in kwargs:
            faults["seed"] = kwargs["fault_seed"]
        if state is None:
            state = EmulatorState(**{"badges": 120, "employees": 30, **state_args})
        elif state_args:
            raise TypeError("pass either state= or EmulatorState arguments, not both")
        emulator = run_emulator(state, host=host, port=port, **faults)
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()
