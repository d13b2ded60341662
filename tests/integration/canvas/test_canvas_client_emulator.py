"""CanvasCredentialsClient over real HTTP against the Canvas Credentials emulator."""

from __future__ import annotations

import pytest

from airflow_provider_credly.client import AuthenticationError, NotFoundError, RetryPolicy, ValidationError
from airflow_provider_credly.client.canvas import CanvasCredentialsClient, is_duplicate_award_error
from airflow_provider_credly.testing.canvas import CanvasState, run_canvas_emulator

pytestmark = pytest.mark.integration


def client_for(emu, **kwargs) -> CanvasCredentialsClient:
    return CanvasCredentialsClient.create(
        emu.username,
        emu.password,
        base_url=emu.base_url,
        retry=RetryPolicy(max_attempts=8, backoff_base=0.005, backoff_max=0.05, jitter=0.0),
        **kwargs,
    )


@pytest.fixture(scope="module")
def big_emulator():
    state = CanvasState.seeded(badge_classes=2, assertions=2600, revoked_every=9, expired_every=13)
    with run_canvas_emulator(state) as emu:
        yield emu


@pytest.mark.parametrize("num", [500, 137])
def test_pagination_through_2000_plus_assertions_exactly_once(big_emulator, num):
    state = big_emulator.state
    client = client_for(big_emulator)
    pages = list(
        client.iter_assertion_pages(
            "issuers", state.issuer_id, include_expired=True, include_revoked=True, num=num
        )
    )
    ids = [a["entityId"] for p in pages for a in p.items]
    assert len(ids) == len(set(ids)) == 2600 == len(state.assertions)
    assert len(pages) == -(-2600 // num)
    assert all(p.next_url and "after=" in p.next_url for p in pages[:-1])


def test_default_lists_leave_out_revoked_and_expired(big_emulator):
    state = big_emulator.state
    client = client_for(big_emulator)
    bc = state.badge_class_ids[0]
    listed = {a["entityId"] for a in client.iter_assertions("badgeclasses", bc)}
    expected = {
        a["entityId"] for a in state.iter_assertions(badgeclass=bc, revoked=False) if not a.get("expires")
    }
    assert listed == expected
    with_revoked = list(client.iter_assertions("badgeclasses", bc, include_revoked=True))
    assert any(a["revoked"] for a in with_revoked)
    assert not any(a.get("expires") for a in with_revoked)


def test_pagination_survives_5xx_and_drops(big_emulator):
    client = client_for(big_emulator)
    big_emulator.set_faults(error_rate=0.3, drop_rate=0.1, fail_paths="/assertions", seed=3)
    try:
        ids = [
            a["entityId"]
            for a in client.iter_assertions(
                "issuers", big_emulator.state.issuer_id, include_expired=True, include_revoked=True, num=250
            )
        ]
    finally:
        big_emulator.clear_faults()
    assert len(ids) == len(set(ids)) == 2600
    assert big_emulator.state.stats["errors_injected"] > 0


def test_expired_token_is_refreshed_once_and_request_retried(canvas_emulator):
    client = client_for(canvas_emulator)
    assert len(client.list_issuers()) == 1
    canvas_emulator.state.expire_tokens()
    assert len(client.list_issuers()) == 1
    stats = canvas_emulator.state.stats
    assert stats["token_password"] == 1
    assert stats["token_refresh_token"] == 1
    assert stats["expired_token"] == 1


def test_short_token_lifetime_is_refreshed_proactively():
    state = CanvasState.seeded(token_lifetime=0.4)
    with run_canvas_emulator(state) as emu:
        client = client_for(emu, refresh_margin=0.1)
        import time

        for _ in range(7):
            client.list_issuers()
            time.sleep(0.2)
        assert state.stats["token_refresh_token"] >= 2
        assert state.stats["expired_token"] == 0  # renewed before expiry: no 401 needed


def test_bad_password_fails_once(canvas_emulator):
    client = CanvasCredentialsClient.create(
        canvas_emulator.username,
        "wrong",
        base_url=canvas_emulator.base_url,
        retry=RetryPolicy(max_attempts=5),
    )
    with pytest.raises(AuthenticationError, match="invalid_grant|Invalid credentials"):
        client.list_issuers()
    assert canvas_emulator.state.stats["token_password"] == 1
    assert canvas_emulator.state.stats["GET issuers"] == 0


def test_issuer_staff_badge_class_and_assertion_endpoints(canvas_emulator):
    client = client_for(canvas_emulator)
    issuer = client.create_issuer(name="Faculty", email="f@example.edu", url="https://example.edu")
    eid, ob_id = issuer["entityId"], issuer["openBadgeId"]
    assert client.get_issuer(eid)["name"] == "Faculty"
    assert client.get_issuer(ob_id, by="openBadgeId")["entityId"] == eid
    assert client.get_issuer(ob_id, by="ref")["entityId"] == eid
    assert client.update_issuer(eid, name="Faculty 2")["name"] == "Faculty 2"
    assert (
        client.replace_issuer(
            ob_id, by="ref", name="F3", email="f@example.edu", url="https://example.edu", description="d"
        )["name"]
        == "F3"
    )
    assert client.add_staff(eid, "b@example.edu", "staff")["role"] == "staff"
    assert client.change_staff_role(eid, "b@example.edu", "editor")["role"] == "editor"
    assert client.change_staff_role(eid, "b@example.edu", "owner", method="PATCH")["role"] == "owner"
    assert client.invite_staff(eid, "c@example.edu", "staff")["status"] == "PENDING"
    client.remove_staff(eid, "b@example.edu")
    with pytest.raises(NotFoundError):
        client.remove_staff(eid, "b@example.edu")
    bc = client.create_badge_class(eid, name="B", image="https://example.edu/b.png", description="d")
    assert [b["entityId"] for b in client.list_badge_classes(eid)] == [bc["entityId"]]
    first = client.issue_assertion(
        "issuers",
        eid,
        badgeclass=bc["entityId"],
        recipient_identity="r@example.edu",
        allow_duplicate_awards=False,
    )
    with pytest.raises(ValidationError) as dup:
        client.issue_assertion(
            "badgeclasses", bc["entityId"], recipient_identity="R@example.edu", allow_duplicate_awards=False
        )
    assert is_duplicate_award_error(dup.value)
    assert client.find_assertion(bc["entityId"], "r@example.edu")["entityId"] == first["entityId"]
    revoked = client.revoke_assertion(first["entityId"], "mistake")
    assert revoked["revoked"] is True
    assert revoked["revocationReason"] == "mistake"
    assert client.get_assertion(first["entityId"])["revoked"] is True
    assert client.find_assertion(bc["entityId"], "r@example.edu") is None
    client.delete_issuer(ob_id, by="openBadgeId")
    with pytest.raises(NotFoundError, match="permission"):
        client.get_issuer(eid)
