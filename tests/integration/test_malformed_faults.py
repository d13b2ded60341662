"""Malformed 2xx bodies over real loopback HTTP: the emulator's ``malformed_rate`` fault (a body cut short
with a matching Content-Length, ``{}``, an HTML page) never ends a walk or a transfer early."""

from __future__ import annotations

import json

import duckdb
import pendulum
import pytest
import requests

from airflow_provider_credly.client import CredlyClient, MalformedResponseError, RetryPolicy
from airflow_provider_credly.client.payloads import build_issue_payload
from airflow_provider_credly.issuing.credly import BadgeIssuer
from airflow_provider_credly.testing.emulator import EmulatorState, run_emulator
from tests.integration.transfer_support import (
    emulator_fixture,  # noqa: F401  (the ``emulator`` fixture: 20,000 badges, 500 per page)
    expected_badges,
    load_dag_module,
    run_dag,
    task_states,
)

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_max=0.05, jitter=0.5)
HV_PATH = "high_volume_issued_badge_search"


@pytest.fixture(scope="module")
def small():
    with run_emulator(EmulatorState(seed=5, badges=1200, employees=80, hv_page_size=50)) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "small" in request.fixturenames:
        request.getfixturevalue("small").clear_faults()


def _client(emulator, retry: RetryPolicy = FAST_RETRY) -> CredlyClient:
    return CredlyClient.create(emulator.token, emulator.org_id, base_url=emulator.base_url, retry=retry)


@pytest.mark.parametrize("mode", ["truncated", "empty_object", "html"])
def test_the_fault_sends_a_complete_http_message_with_an_unusable_body(small, mode):
    small.set_faults(malformed_rate=1.0, malformed_mode=mode, fail_paths=HV_PATH)
    resp = requests.get(
        f"{small.base_url}/organizations/{small.org_id}/{HV_PATH}", auth=(small.token, ""), timeout=10
    )
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == len(resp.content)  # nothing lost on the wire
    if mode == "truncated":
        assert resp.content.startswith(b'{"data":[')
        with pytest.raises(ValueError):
            json.loads(resp.content)
    elif mode == "empty_object":
        assert resp.json() == {}
    else:
        assert resp.headers["Content-Type"].startswith("text/html")
    assert small.stats()["malformed_injected"] >= 1


def test_cursor_walk_under_malformed_pages_yields_every_badge_once(small):
    small.set_faults(malformed_rate=0.3, malformed_mode="rotate", fail_paths=HV_PATH, seed=11)
    ids = [
        b["id"]
        for page in _client(small).iter_high_volume_badge_pages(badge_format="minimal")
        for b in page.items
    ]
    injected = small.stats()["malformed_injected"]
    assert injected >= 3  # the walk really met malformed pages of each kind
    assert len(ids) == len(set(ids)) == small.state.badges_count() == 1200


def test_page_number_walks_under_malformed_pages_are_complete(small):
    small.set_faults(malformed_rate=0.3, fail_paths="/(badges|employees)$", seed=4)
    client = _client(small)
    badges = [b["id"] for b in client.iter_badges()]
    employees = [e["id"] for e in client.iter_employees()]
    assert small.stats()["malformed_injected"] >= 2
    assert len(badges) == len(set(badges)) == 1200
    assert len(employees) == len(set(employees)) == 80


def test_a_page_that_stays_malformed_fails_naming_its_page_never_ends_the_walk(small):
    client = _client(small, RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.02))
    pages = client.iter_high_volume_badge_pages(badge_format="minimal")
    first = next(pages)
    assert len(first.items) == 50 and first.next_url
    small.set_faults(malformed_rate=1.0, malformed_mode="truncated", fail_paths=HV_PATH)
    with pytest.raises(MalformedResponseError) as info:
        next(pages)
    err = info.value
    assert (err.method, err.page, err.attempts) == ("GET", 2, 3)
    assert err.path == f"/v1/organizations/{small.org_id}/{HV_PATH}"
    assert small.token not in str(err)


def test_single_resource_reads_are_retried_and_writes_are_not(small):
    client = _client(small)
    small.set_faults(malformed_rate=0.5, malformed_mode="html", fail_paths=r"/employees/[^/]+$", seed=2)
    some = next(iter(small.state.workforce.by_id))
    for _ in range(5):
        assert client.get_employee(some)["id"] == some
    before = small.state.badges_count()
    small.set_faults(malformed_rate=1.0, malformed_mode="empty_object", fail_paths="/badges$")
    template = small.state.templates[0].id
    with pytest.raises(MalformedResponseError, match="not retried"):
        client.issue_badge(
            badge_template_id=template,
            recipient_email="malformed@example.com",
            issued_to_first_name="Mal",
            issued_to_last_name="Formed",
            issued_at="2026-11-21 09:00:00 +0000",
        )
    assert small.state.badges_count() == before + 1  # the server acted once; the client did not repeat


def test_a_malformed_answer_to_an_issue_is_an_unknown_outcome_resolved_by_lookup(small):
    """The server created the badge and answered with an unusable body: the issuer looks the badge up and
    reports it issued, once, instead of failing the row or sending it again."""
    client = _client(small)
    template = small.state.templates[0].id
    before = small.state.badges_count()
    # one fault: the POST's answer; the look-ups that follow are answered normally
    small.set_faults(malformed_rate=1.0, malformed_mode="truncated", fail_paths="/badges$", max_faults=1)
    payload = build_issue_payload(
        {
            "badge_template_id": template,
            "recipient_email": "lookup-after-malformed@example.com",
            "issued_to_first_name": "Mal",
            "issued_to_last_name": "Formed",
            "issued_at": "2026-11-21 09:00:00 +0000",
        }
    )
    result = BadgeIssuer(client).issue(payload)
    small.clear_faults()
    assert result.outcome == "issued"
    assert small.state.badges_count() == before + 1
    found = list(client.iter_badges({"recipient_email": "lookup-after-malformed@example.com"}))
    assert [b["id"] for b in found] == [result.badge_id]


# ------------------------------------------------------------------------------------------- transfers


@pytest.fixture
def dags():
    return load_dag_module("xfer_badges")


def _table(path):
    with duckdb.connect(str(path), read_only=True) as con:
        n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM credly_badges").fetchone()
        ids = {r[0] for r in con.execute("SELECT id FROM credly_badges").fetchall()}
        loads = con.execute("SELECT COUNT(DISTINCT _load_id) FROM credly_badges").fetchone()[0]
        cp = con.execute("SELECT status, pages, rows FROM credly_transfer_checkpoints").fetchone()
    return n, distinct, ids, loads, cp


def test_transfer_under_malformed_pages_ends_exact(airflow_db, emulator, duckdb_conn, dags):
    emulator.set_faults(malformed_rate=0.15, malformed_mode="rotate", fail_paths=HV_PATH, seed=9)
    dr = run_dag(dags.xfer_badges, logical_date=pendulum.now("UTC"), run_conf={"badge_format": "minimal"})
    injected = emulator.stats()["malformed_injected"]
    emulator.clear_faults()
    assert injected >= 3
    assert task_states(dr) == {"load": "success"}
    n, distinct, ids, loads, cp = _table(duckdb_conn)
    assert n == distinct == len(expected_badges(emulator.state)) == 20_000
    assert ids == set(expected_badges(emulator.state))
    assert cp == ("done", 40, 20_000)


def test_transfer_that_runs_out_of_retries_fails_resumably_then_ends_exact(
    airflow_db, emulator, duckdb_conn, monkeypatch
):
    dags = load_dag_module("xfer_malformed")
    root = emulator.base_url.removesuffix("/v1")
    monkeypatch.setenv("CREDLY_TEST_BREAK_AFTER_PAGES", "8")
    monkeypatch.setenv("CREDLY_TEST_EMULATOR_FAULTS", f"{root}/_emulator/faults")
    monkeypatch.setenv(
        "CREDLY_TEST_BREAK_FAULTS",
        json.dumps({"malformed_rate": 1.0, "malformed_mode": "truncated", "fail_paths": HV_PATH}),
    )
    dr = run_dag(dags.xfer_malformed, logical_date=pendulum.now("UTC"))
    assert task_states(dr) == {"load": "failed"}  # never "success" with a fraction of the rows
    n, distinct, _, loads, (status, pages, rows) = _table(duckdb_conn)
    assert status == "running"  # resumable, not done
    assert 8 <= pages < 40
    assert n == distinct == rows == pages * 500  # exactly the committed pages, each badge once
    assert loads == 1

    emulator.clear_faults()
    monkeypatch.delenv("CREDLY_TEST_BREAK_AFTER_PAGES")
    dr = run_dag(dags.xfer_malformed, logical_date=pendulum.now("UTC"))
    assert task_states(dr) == {"load": "success"}
    n, distinct, ids, loads, cp = _table(duckdb_conn)
    assert cp == ("done", 40, 20_000)
    assert n == distinct == 20_000
    assert ids == set(expected_badges(emulator.state))
    assert loads == 1  # the rerun continued the failed load from its checkpoint
