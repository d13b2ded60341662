"""The emulator's ``odd_values_rate`` fault: badge records whose values take shapes a real server may send
(timestamps without an offset, with a space, 6 fractional digits or another offset; a JSON number for a text
field; names with characters that stress ``COPY``), chosen per record by a hash of ``(seed, record)``, in
every badge render; rate 0 renders exactly as without the knob."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
import requests

from airflow_provider_credly.client.times import parse_timestamp
from airflow_provider_credly.testing.emulator import (
    EmulatorState,
    FaultInjector,
    RunningEmulator,
    render,
    run_emulator,
)
from airflow_provider_credly.testing.emulator.faults import ODD_VALUE_KINDS, OddValues
from airflow_provider_credly.testing.emulator.render import ODD_TEXT

HV = "high_volume_issued_badge_search"
TIMESTAMPS = ("updated_at", "created_at", "expires_at", "issued_at", "state_updated_at")
SHAPES = {  # the shape of a "...T10:20:30.123Z" timestamp of each kind (the instant is checked apart)
    "naive": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$",
    "space": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$",
    "micros": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$",
    "utc_offset": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$",
    "plus_two": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+02:00$",
    "minus_nine_thirty": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-09:30$",
}


def _get(emu: RunningEmulator, path: str, **params: Any) -> requests.Response:
    resp = requests.get(f"{emu.org_url}/{path}", params=params, auth=emu.auth, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp


def _cursor_bodies(emu: RunningEmulator, badge_format: str) -> list[bytes]:
    """Every page body of the high-volume cursor, as sent."""
    bodies: list[bytes] = []
    url: str | None = f"{emu.org_url}/{HV}"
    params: dict[str, str] | None = {"badge_format": badge_format}
    while url:
        resp = requests.get(url, params=params, auth=emu.auth, timeout=10)
        assert resp.status_code == 200, resp.text
        bodies.append(resp.content)
        url, params = resp.json()["metadata"]["next_page_url"], None
    return bodies


def _records(bodies: list[bytes]) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for body in bodies for b in json.loads(body)["data"]}


def _every_badge_body(emu: RunningEmulator, badge_id: str, email: str) -> list[bytes]:
    """The bodies of every read endpoint that renders badges (the emulator's address in next-page URLs
    replaced: two emulators listen on two ports)."""
    bodies = [
        *_cursor_bodies(emu, "minimal"),
        *_cursor_bodies(emu, "default"),
        _get(emu, "badges", per=100).content,
        _get(emu, f"badges/{badge_id}").content,
        _get(emu, f"employees/{email}/data").content,
    ]
    return [body.replace(emu.root_url.encode(), b"http://emulator") for body in bodies]


def test_the_rate_is_validated_like_the_other_rates() -> None:
    for bad in (-0.01, 1.5, float("nan")):
        with pytest.raises(ValueError, match="odd_values_rate"):
            FaultInjector(odd_values_rate=bad)
    faults = FaultInjector(odd_values_rate=0.25, seed=4)
    assert faults.odd_values == OddValues(0.25, 4)
    with pytest.raises(ValueError, match="odd_values_rate"):
        faults.configure(odd_values_rate=2)
    assert faults.odd_values == OddValues(0.25, 4)  # a refused change changes nothing
    faults.configure(odd_values_rate=0.0)
    assert faults.odd_values is None  # rate 0: nothing for the renders to check per record
    with run_emulator(EmulatorState(seed=2, badges=10, employees=2)) as emu:  # the HTTP admin endpoint
        refused = requests.post(
            f"{emu.root_url}/_emulator/faults", json={"odd_values_rate": 1.01}, timeout=10
        )
        assert refused.status_code == 400 and "odd_values_rate" in refused.text
        ok = requests.post(f"{emu.root_url}/_emulator/faults", json={"odd_values_rate": 0.5}, timeout=10)
        assert ok.status_code == 200 and ok.json()["odd_values_rate"] == 0.5
        assert emu.state.odd_values == OddValues(0.5, 2)  # the fault seed defaults to the state's
        emu.clear_faults()
        assert emu.state.odd_values is None


def test_the_choice_is_a_hash_of_seed_and_record_and_honours_the_rate() -> None:
    n = 40_000
    odd = OddValues(0.05, 21)
    kinds = [odd.kind(r) for r in range(n)]
    assert kinds == [OddValues(0.05, 21).kind(r) for r in range(n)]  # deterministic
    chosen = [r for r, k in enumerate(kinds) if k]
    assert 0.045 < len(chosen) / n < 0.055  # ~2,000 +- 44 (one standard deviation)
    per_kind = Counter(k for k in kinds if k)
    assert set(per_kind) == set(ODD_VALUE_KINDS)
    share = len(chosen) / len(ODD_VALUE_KINDS)
    assert all(0.7 * share < c < 1.3 * share for c in per_kind.values()), per_kind
    # another seed chooses other records; a higher rate keeps the records of a lower one (same hash)
    other = {r for r in range(n) if OddValues(0.05, 22).kind(r)}
    assert len(other & set(chosen)) < 0.2 * len(chosen)
    assert set(chosen) <= {r for r in range(n) if OddValues(0.2, 21).kind(r)}
    assert all(OddValues(1.0, 21).kind(r) for r in range(1000))


@pytest.mark.parametrize("kind", ODD_VALUE_KINDS)
def test_each_shape_means_what_the_usual_record_means(kind: str) -> None:
    state = EmulatorState(seed=3, badges=60, employees=5)
    clean = {r: (render.badge_minimal(state, r), render.badge_full(state, r)) for r in range(60)}
    state.odd_values = OddValues(1.0, 9)
    rows = [r for r in range(60) if state.odd_values.kind(r) == kind]
    assert rows
    for r in rows:
        text = render.badge_minimal_json(state, r)
        for was, odd in zip(clean[r], (json.loads(text), render.badge_full(state, r)), strict=True):
            assert list(odd) == list(was)  # the same fields in the same order
            changed = {k for k in was if odd[k] != was[k]}
            if kind in SHAPES:
                assert changed == {k for k in TIMESTAMPS if was[k] is not None}
                for k in changed:
                    assert parse_timestamp(odd[k]) == parse_timestamp(was[k])  # the same instant
                    assert re.match(SHAPES[kind], odd[k]), odd[k]
            elif kind == "number":
                assert changed == {"issuer_earner_id"}
                assert type(odd["issuer_earner_id"]) is int
            else:
                assert changed == {"issued_to", "issued_to_last_name"}
                assert all(odd[k] == was[k] + ODD_TEXT for k in changed)
        # the minimal text: UTF-8 as usual, or every non-ASCII character escaped (surrogate pairs)
        if kind == "escaped":
            assert text.isascii() and "\\ud835\\udd18" in text and "\\u2028" in text
        elif kind == "stress":
            assert "\U0001d518" in text and "\\\\N" in text and "\\t" in text


def test_rate_zero_renders_byte_for_byte_as_without_the_knob() -> None:
    def state() -> EmulatorState:
        return EmulatorState(seed=6, badges=300, employees=20, hv_page_size=40)

    with run_emulator(state()) as plain, run_emulator(state()) as knob:
        badge_id = plain.state.store.ids[3]
        email = plain.state.store.email(3)
        before = _every_badge_body(plain, badge_id, email)
        assert _every_badge_body(knob, badge_id, email) == before
        knob.set_faults(odd_values_rate=0.3)
        assert _every_badge_body(knob, badge_id, email) != before
        knob.set_faults(odd_values_rate=0.0)
        assert knob.state.odd_values is None
        assert _every_badge_body(knob, badge_id, email) == before


def test_a_record_renders_the_same_on_every_request_page_and_endpoint() -> None:
    def run(page_size: int) -> RunningEmulator:
        return run_emulator(EmulatorState(seed=8, badges=400, employees=20, hv_page_size=page_size), seed=5)

    with run(7) as small, run(50) as large:
        for emu in (small, large):
            emu.set_faults(odd_values_rate=0.2)
        for badge_format in ("minimal", "default"):
            pages = _cursor_bodies(small, badge_format)
            assert _cursor_bodies(small, badge_format) == pages  # the same bytes on every request
            records = _records(pages)
            assert records == _records(_cursor_bodies(large, badge_format))  # whatever the page size
        state = small.state
        odd = state.odd_values
        assert odd is not None
        minimal = _records(_cursor_bodies(small, "minimal"))
        default = _records(_cursor_bodies(small, "default"))
        full = {b["id"]: b for b in _get(small, "badges", per=100, page=1).json()["data"]}
        seen = set()
        for r in state.store.order:
            kind = odd.kind(r)
            badge_id = state.store.ids[r]
            want = render.badge_minimal(state, r)
            assert minimal[badge_id] == want
            shared = {k: v for k, v in want.items() if k not in ("badge_template", "user")}
            assert {k: v for k, v in default[badge_id].items() if k in shared} == shared
            if badge_id in full:
                assert {k: v for k, v in full[badge_id].items() if k in shared} == shared
            if kind:
                seen.add(kind)
                one = _get(small, f"badges/{badge_id}").json()["data"]
                assert {k: v for k, v in one.items() if k in shared} == shared
        assert seen == set(ODD_VALUE_KINDS)


def test_employee_data_and_events_carry_the_odd_values() -> None:
    with run_emulator(EmulatorState(seed=4, badges=200, employees=40), odd_values_rate=1.0, seed=3) as emu:
        state = emu.state
        odd = state.odd_values
        assert odd is not None
        r = next(r for r in state.store.order if odd.kind(r) == "plus_two")
        email, badge_id = state.store.email(r), state.store.ids[r]
        data = _get(emu, f"employees/{email}/data").json()["data"]
        (item,) = [b for b in data["badges"] if b["id"] == badge_id]
        assert item["issued_at"].endswith("+02:00")
        requests.put(
            f"{emu.org_url}/badges/{badge_id}/revoke", json={"reason": "test"}, auth=emu.auth, timeout=10
        ).raise_for_status()
        events = _get(emu, "events").json()["data"]
        (revoked,) = [e for e in events if e["event_type"] == "badge.revoked"]
        assert revoked["badge"]["id"] == badge_id and revoked["badge"]["updated_at"].endswith("+02:00")
