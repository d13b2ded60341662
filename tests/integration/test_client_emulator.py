"""The HTTP core and CredlyClient over real loopback HTTP against the local emulator."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_credly.client import (
    AuthenticationError,
    CredlyClient,
    RetryPolicy,
    UnsafeUrlError,
    ValidationError,
)
from airflow_provider_credly.client.filters import BADGE_FILTERS

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=8, backoff_base=0.01, backoff_max=0.05, jitter=0.5)


def make_client(emulator: Any, *, token: str | None = None, retry: RetryPolicy = FAST_RETRY) -> CredlyClient:
    return CredlyClient.create(
        token or emulator.token, emulator.org_id, base_url=emulator.base_url, retry=retry, timeout=(5, 10)
    )


def _sort_key(badge: dict[str, Any]) -> tuple[str, str]:
    return badge["created_at"], badge["id"]


@pytest.fixture(scope="module")
def big_emulator():
    from airflow_provider_credly.testing import EmulatorState, run_emulator

    with run_emulator(EmulatorState(seed=7, badges=5200, employees=60)) as emulator:
        yield emulator


def test_cursor_yields_each_of_5200_badges_exactly_once_in_order(big_emulator):
    client = make_client(big_emulator)
    ids: list[str] = []
    keys: list[tuple[str, str]] = []
    pages = 0
    for page in client.iter_high_volume_badge_pages(badge_format="minimal"):
        pages += 1
        ids.extend(b["id"] for b in page.items)
        keys.extend(_sort_key(b) for b in page.items)
    assert len(ids) == 5200 == len(set(ids)) == big_emulator.state.badges_count()
    assert keys == sorted(keys)
    assert pages >= 5200 // 50


def test_cursor_is_stable_while_badges_are_created(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=400)
    client = make_client(emulator)
    original = {b["id"] for b in client.iter_high_volume_badges(badge_format="minimal")}
    seen: list[str] = []
    for number, page in enumerate(client.iter_high_volume_badge_pages(badge_format="minimal")):
        seen.extend(b["id"] for b in page.items)
        if number == 2:
            template = emulator.state.templates[0]
            for i in range(3):
                client.issue_badge(
                    recipient_email=f"late{i}@example.com",
                    issued_to_first_name="Late",
                    issued_to_last_name=f"Comer{i}",
                    badge_template_id=template["id"] if isinstance(template, dict) else template.id,
                    issued_at=datetime.now(UTC),
                )
    assert len(seen) == len(set(seen))
    assert original <= set(seen)


def test_page_iteration_lists_every_badge_once(big_emulator):
    client = make_client(big_emulator)
    pages = list(client.iter_badge_pages(sort="created_at"))
    ids = [b["id"] for p in pages for b in p.items]
    assert len(ids) == len(set(ids)) == 5200
    assert all(len(p.items) <= 50 for p in pages)
    assert len(pages) == 104
    assert pages[0].metadata["total_count"] == 5200
    assert pages[-1].next_url is None


def _filter_cases(badge: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """For every documented filter key: a value taken from ``badge`` and a predicate every result must meet."""
    template = badge["badge_template"]
    day = badge["issued_at"][:10]
    created = badge["created_at"][:10]
    updated = badge["updated_at"][:10]
    expires = (badge.get("expires_at") or "2099-01-01")[:10]
    state_day = (badge.get("state_updated_at") or badge["created_at"])[:10]
    return {
        "query": (badge["recipient_email"], lambda b: badge["recipient_email"] in b["recipient_email"]),
        "state": ([badge["state"]], lambda b: b["state"] == badge["state"]),
        "user_id": (badge["user"]["id"], lambda b: b["user"]["id"] == badge["user"]["id"]),
        "issued_at_min": (day, lambda b: b["issued_at"][:10] >= day),
        "issued_at_max": (day, lambda b: b["issued_at"][:10] <= day),
        "issued_at_date_min": (day, lambda b: b["issued_at_date"] >= day),
        "issued_at_date_max": (day, lambda b: b["issued_at_date"] <= day),
        "issuer_id": ([badge["issuer"]["entities"][0]["entity"]["id"]], lambda b: True),
        "issuer_earner_id": (
            badge["issuer_earner_id"],
            lambda b: b["issuer_earner_id"] == badge["issuer_earner_id"],
        ),
        "public": (badge["public"], lambda b: b["public"] == badge["public"]),
        "badge_templates[owner_id]": (
            [template["owner"]["id"]],
            lambda b: b["badge_template"]["owner"]["id"] == template["owner"]["id"],
        ),
        "badge_templates[name]": (
            template["name"],
            lambda b: template["name"].lower() in b["badge_template"]["name"].lower(),
        ),
        "badge_templates[reporting_tags]": (["demo"], lambda b: True),
        "badge_templates[skills]": (
            [template["skills"][0]] if template.get("skills") else ["x"],
            lambda b: True,
        ),
        "created_at_min": (created, lambda b: b["created_at"][:10] >= created),
        "created_at_max": (created, lambda b: b["created_at"][:10] <= created),
        "expires_at_min": (expires, lambda b: b["expires_at"] is None or b["expires_at"][:10] >= expires),
        "expires_at_max": (
            expires,
            lambda b: b["expires_at"] is not None and b["expires_at"][:10] <= expires,
        ),
        "expires_at_date_min": (
            expires,
            lambda b: b["expires_at_date"] is None or b["expires_at_date"] >= expires,
        ),
        "expires_at_date_max": (
            expires,
            lambda b: b["expires_at_date"] is not None and b["expires_at_date"] <= expires,
        ),
        "state_updated_at_min": (state_day, lambda b: True),
        "state_updated_at_max": (state_day, lambda b: True),
        "updated_at_min": (updated, lambda b: b["updated_at"][:10] >= updated),
        "updated_at_max": (updated, lambda b: b["updated_at"][:10] <= updated),
        "badge_template_id": ([template["id"]], lambda b: b["badge_template"]["id"] == template["id"]),
        "recipient_email": (
            badge["recipient_email"],
            lambda b: b["recipient_email"] == badge["recipient_email"],
        ),
        "recipient_email_all": (
            badge["recipient_email"],
            lambda b: b["recipient_email"] == badge["recipient_email"],
        ),
    }


def test_every_badge_filter_key_round_trips(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=300)
    client = make_client(emulator)
    sample = next(
        b for b in client.iter_badges(sort="issued_at") if b.get("issuer_earner_id") and b.get("expires_at")
    )
    cases = _filter_cases(sample)
    assert set(cases) == set(BADGE_FILTERS)  # every documented key is exercised
    for key, (value, predicate) in cases.items():
        results = list(client.iter_badges({key: value}))
        for badge in results:
            assert predicate(badge), f"filter {key}={value!r} returned a badge that does not match"
        # The sample itself matches every filter built from its own values (keys that need data the
        # sample lacks, such as reporting tags, only have to be accepted by the server).
        if key not in ("badge_templates[reporting_tags]", "badge_templates[skills]", "issuer_id"):
            assert sample["id"] in {b["id"] for b in results}, f"filter {key}={value!r} lost the sample badge"
    # The high-volume endpoint accepts the same filters.
    hv = list(client.iter_high_volume_badges({"state": [sample["state"]]}, badge_format="minimal"))
    assert hv
    assert all(b["state"] == sample["state"] for b in hv)


def test_documented_422s_surface_their_messages(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=20)
    client = make_client(emulator)
    template = client.iter_badges().__next__()["badge_template"]["id"]
    fields = {
        "recipient_email": "dup@example.com",
        "issued_to_first_name": "Dup",
        "issued_to_last_name": "Licate",
        "badge_template_id": template,
        "issued_at": datetime(2025, 1, 1, tzinfo=UTC),
    }
    first = client.issue_badge(**fields)
    assert first["state"] == "pending"
    assert first["recipient_email"] == "dup@example.com"
    with pytest.raises(ValidationError) as dup:
        client.issue_badge(**fields)
    assert dup.value.status == 422
    assert dup.value.message

    replacement = client.replace_badge(
        first["id"], badge_template_id=template, issued_at="2025-02-01T00:00:00Z"
    )
    with pytest.raises(ValidationError, match="already been replaced") as again:
        client.replace_badge(first["id"], badge_template_id=template, issued_at="2025-02-01T00:00:00Z")
    assert again.value.current_badge_id == replacement["id"]
    with pytest.raises(ValidationError, match="cannot be revoked because it has been replaced") as revoke:
        client.revoke_badge(first["id"], "oops")
    assert revoke.value.current_badge_id == replacement["id"]
    with pytest.raises(ValidationError, match="You can not delete replaced badges"):
        client.delete_badge(first["id"])
    assert client.revoke_badge(replacement["id"], "oops")["state"] == "revoked"


def test_wrong_token_is_an_authentication_error(credly_emulator):
    client = make_client(credly_emulator, token="wrong-token-000")
    with pytest.raises(AuthenticationError) as info:
        client.get_organization()
    assert info.value.status == 401
    assert "wrong-token-000" not in str(info.value)


def test_listing_is_exact_under_injected_429_and_5xx(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=1500)
    client = make_client(emulator)
    expected = [b["id"] for b in client.iter_high_volume_badges(badge_format="minimal")]
    before = emulator.stats()
    emulator.set_faults(error_rate=0.2, rate_limit=400, drop_rate=0.05, seed=3)
    got = [b["id"] for b in client.iter_high_volume_badges(badge_format="minimal")]
    after = emulator.stats()
    emulator.clear_faults()
    assert got == expected
    assert after["errors"] > before["errors"]
    assert after["drops"] > before["drops"]


def test_retry_after_http_date_is_honoured(credly_emulator_factory):
    emulator = credly_emulator_factory(badges=10)
    retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    assert "GMT" in retry_after
    emulator.set_faults(rate_limit=1, retry_after_http_date=True)
    waits: list[float] = []
    client = make_client(emulator, retry=RetryPolicy(max_attempts=10, backoff_base=0.01, jitter=0.0))
    client.http._sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))  # type: ignore[attr-defined]
    for _ in range(3):
        assert client.get_organization()["id"] == emulator.org_id
    assert emulator.stats()["by_status"].get("429", 0) >= 1
    # Each 429 was answered with a wait taken from the HTTP date (up to 1 s), not the 0.01 s backoff.
    assert waits
    assert all(0.0 <= w <= 1.1 for w in waits)
    assert max(waits) > 0.05


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []
    next_url = ""

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        body = json.dumps(
            {"data": [{"id": "1"}], "metadata": {"next_page_url": type(self).next_url}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_foreign_host_next_page_url_is_refused_and_the_token_stays_home():
    class Foreign(_Recorder):
        hits: list[str] = []

    class Home(_Recorder):
        hits: list[str] = []

    foreign = _serve(Foreign)
    home = _serve(Home)
    try:
        Home.next_url = f"http://127.0.0.1:{foreign.server_port}/v1/organizations/o/badges?page=2"
        client = CredlyClient.create("tok", "o", base_url=f"http://127.0.0.1:{home.server_port}/v1")
        with pytest.raises(UnsafeUrlError):
            list(client.iter_badges())
        assert Home.hits
        assert Foreign.hits == []
    finally:
        foreign.shutdown()
        home.shutdown()
