"""Canvas Credentials under the emulator's malformed-body fault: the ``result``/``status`` envelope is
checked on every page, a malformed page is retried, and a transfer never succeeds short."""

from __future__ import annotations

import json

import duckdb
import pytest

from airflow_provider_credly.client import MalformedResponseError, RetryPolicy
from airflow_provider_credly.client.canvas import CanvasCredentialsClient
from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator
from airflow_provider_credly.transfers.canvas_credentials_to_sql import (
    CanvasCredentialsAssertionsToSqlOperator,
)

pytestmark = pytest.mark.integration

TOTAL = 1500
ASSERTIONS = r"/assertions$"


@pytest.fixture(scope="module")
def emulator():
    state = CanvasState.seeded(badge_classes=2, assertions=TOTAL, revoked_every=10, expired_every=15)
    with run_canvas_emulator(state) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _clear(emulator):
    yield
    emulator.clear_faults()


def _client(emu, attempts: int = 8) -> CanvasCredentialsClient:
    retry = RetryPolicy(max_attempts=attempts, backoff_base=0.005, backoff_max=0.02, jitter=0.0)
    return CanvasCredentialsClient.create(emu.username, emu.password, base_url=emu.base_url, retry=retry)


def _walk(client: CanvasCredentialsClient, issuer: str) -> list[str]:
    pages = client.iter_assertion_pages(
        "issuers", issuer, include_expired=True, include_revoked=True, num=100
    )
    return [a["entityId"] for page in pages for a in page.items]


def test_walk_under_malformed_pages_yields_every_assertion_once(emulator):
    emulator.set_faults(malformed_rate=0.3, malformed_mode="rotate", fail_paths=ASSERTIONS, seed=6)
    ids = _walk(_client(emulator), emulator.state.issuer_id)
    assert emulator.state.stats["malformed_injected"] >= 3
    assert len(ids) == len(set(ids)) == TOTAL


@pytest.mark.parametrize("mode", ["truncated", "empty_object", "html"])
def test_a_page_that_stays_malformed_is_an_error_not_the_last_page(emulator, mode):
    client = _client(emulator, attempts=3)
    pages = client.iter_assertion_pages("issuers", emulator.state.issuer_id, num=100)
    assert len(next(pages).items) == 100
    emulator.set_faults(malformed_rate=1.0, malformed_mode=mode, fail_paths=ASSERTIONS)
    with pytest.raises(MalformedResponseError) as info:
        next(pages)
    assert (info.value.page, info.value.attempts) == (2, 3)
    assert emulator.password not in str(info.value)


def test_single_object_reads_check_the_envelope(emulator):
    client = _client(emulator, attempts=2)
    some = next(iter(emulator.state.assertions))
    emulator.set_faults(malformed_rate=1.0, malformed_mode="empty_object", fail_paths=r"/v2/assertions/")
    with pytest.raises(MalformedResponseError, match="after 2 attempt"):
        client.get_assertion(some)
    emulator.clear_faults()
    assert client.get_assertion(some)["entityId"] == some


def test_transfer_fails_resumably_under_a_lasting_fault_then_ends_exact(emulator, duckdb_conn, monkeypatch):
    conn = emulator.connection(retries=2)
    monkeypatch.setenv("AIRFLOW_CONN_CANVAS_CREDENTIALS_DEFAULT", json.dumps(conn))
    emu = emulator

    class Breaking(CanvasCredentialsAssertionsToSqlOperator):
        def after_batch_committed(self, checkpoint):
            if checkpoint.pages >= 2:
                emu.set_faults(malformed_rate=1.0, malformed_mode="truncated", fail_paths=ASSERTIONS)

    settings = {
        "task_id": "load",
        "table": "canvas_assertions",
        "issuer_id": emulator.state.issuer_id,
        "destination_conn_id": "duckdb_warehouse",
        "page_size": 100,
        "batch_rows": 200,
        "checkpoint_key": "canvas-malformed",
    }
    with pytest.raises(MalformedResponseError):
        Breaking(**settings).execute(context={})
    with duckdb.connect(str(duckdb_conn)) as db:
        status, pages, rows = db.execute(
            "select status, pages, rows from credly_transfer_checkpoints where transfer_key = 'canvas-malformed'"
        ).fetchone()
        count, distinct = db.execute(
            "select count(*), count(distinct entity_id) from canvas_assertions"
        ).fetchone()
    assert status == "running"
    assert 2 <= pages < TOTAL // 100
    assert count == distinct == rows == pages * 100

    emulator.clear_faults()
    result = CanvasCredentialsAssertionsToSqlOperator(**settings).execute(context={})
    assert result["resumed"] is True
    assert result["rows"] == TOTAL
    with duckdb.connect(str(duckdb_conn)) as db:
        assert db.execute("select count(*), count(distinct entity_id) from canvas_assertions").fetchone() == (
            TOTAL,
            TOTAL,
        )
