"""The fault knobs added for attribution tests: per-method errors, a fault budget, lost refusals."""

from __future__ import annotations

import pytest

from airflow_provider_credly.testing.emulator.faults import FaultInjector


def test_error_methods_limit_errors_to_those_methods() -> None:
    faults = FaultInjector(error_rate=1.0, error_methods="get")
    assert faults.decide("GET", "/v1/x").action == "error"
    assert faults.decide("POST", "/v1/x").action is None


def test_max_faults_stops_injecting_after_the_budget() -> None:
    faults = FaultInjector(error_rate=1.0, error_methods="GET", error_after_rate=1.0, max_faults=2)
    assert faults.decide("POST", "/v1/x").after is not None
    assert faults.decide("GET", "/v1/x").action == "error"
    later = [faults.decide(m, "/v1/x") for m in ("GET", "POST", "GET")]
    assert [(d.action, d.after) for d in later] == [(None, None)] * 3
    faults.configure(max_faults=1)  # a new budget from the last configure
    assert faults.decide("GET", "/v1/x").action == "error"
    with pytest.raises(ValueError, match="max_faults"):
        faults.configure(max_faults=-1)


@pytest.mark.parametrize(("refusals", "lost_400"), [(False, False), (True, True)])
def test_error_after_refusals_loses_4xx_answers_too(refusals: bool, lost_400: bool) -> None:
    decision = FaultInjector(error_after_rate=1.0, error_after_refusals=refusals).decide("POST", "/v1/x")
    assert decision.loses(201)
    assert decision.loses(400) is lost_400
    assert not decision.loses(429)
    assert not decision.loses(500)
