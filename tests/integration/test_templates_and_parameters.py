"""Badge templates (client, emulator, SQL transfer) and the documented parameters that could not be sent
before: employee external badges ``per`` and resumable pages, Canvas ``notify`` and ``include_staff``.
Real loopback HTTP against the emulators.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from airflow_provider_credly.client import CredlyClient, NotFoundError, RetryPolicy
from airflow_provider_credly.client.canvas import CanvasCredentialsClient
from airflow_provider_credly.issuing.canvas import run_bulk_award, validate_assertion_rows
from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgeTemplatesToSqlOperator

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.02)


def _client(emu: Any) -> CredlyClient:
    return CredlyClient.create(emu.token, emu.org_id, base_url=emu.base_url, retry=FAST)


class _TI:
    try_number = 1
    dag_id, run_id, task_id, map_index = "d", "r", "templates", -1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def test_badge_templates_list_filter_sort_and_get(credly_emulator_factory):
    emu = credly_emulator_factory(templates=60)
    client = _client(emu)
    pages = list(client.iter_badge_template_pages())
    assert [len(p) for p in pages] == [50, 10]
    assert pages[0].metadata["total_count"] == 60
    assert [t["id"] for p in pages for t in p.items] == [t.id for t in emu.state.templates]
    names = [t["name"] for t in client.iter_badge_templates(sort="-name")]
    assert names == sorted(names, reverse=True)
    # resumable from a saved next URL
    resumed = list(client.iter_badge_template_pages(start_url=pages[0].next_url))
    assert [t["id"] for t in resumed[0].items] == [t["id"] for t in pages[1].items]

    archived = emu.state.templates[3]
    emu.state.archive_template(archived.id)
    assert [t["id"] for t in client.iter_badge_templates({"state": "archived"})] == [archived.id]
    wanted = emu.state.templates[5].name
    assert wanted in {t["name"] for t in client.iter_badge_templates({"name": wanted})}

    one = client.get_badge_template(emu.state.templates[2].id)
    assert one["id"] == emu.state.templates[2].id
    assert {"name", "state", "skills", "owner", "allow_duplicate_badges", "badges_count"} <= set(one)
    with pytest.raises(NotFoundError):
        client.get_badge_template("no-such-template")


def test_badge_template_filters_are_checked_before_any_request(credly_emulator):
    client = _client(credly_emulator)
    with pytest.raises(ValueError, match="unknown filter key"):
        list(client.iter_badge_templates({"colour": "red"}))
    with pytest.raises(ValueError, match="accepts active, archived, draft"):
        list(client.iter_badge_templates({"state": "gone"}))
    with pytest.raises(ValueError, match="unknown sort key"):
        list(client.iter_badge_templates(sort="-badges"))
    assert credly_emulator.stats()["requests_total"] == 0


def test_badge_templates_to_duckdb_so_rows_join_on_names(credly_emulator_factory, monkeypatch, tmp_path):
    from tests.conftest import connect_credly, set_connection

    emu = credly_emulator_factory(templates=55)
    connect_credly(monkeypatch, emu, backoff_max=None)
    path = tmp_path / "w.duckdb"
    set_connection(monkeypatch, "duckdb_warehouse", conn_type="duckdb", host=str(path))
    op = CredlyBadgeTemplatesToSqlOperator(
        task_id="templates",
        table="credly_badge_templates",
        destination_conn_id="duckdb_warehouse",
        include_child_tables=True,
    )
    summary = op.execute({"ti": _TI(), "run_id": "r"})  # type: ignore[arg-type]
    assert summary["rows"] == 55
    target = emu.state.templates[7]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM credly_badge_templates").fetchone() == (
            55,
            55,
        )
        row = con.execute(
            "SELECT t.id, t.state, t.allow_duplicate_badges FROM (SELECT ? AS course) r "
            "JOIN credly_badge_templates t ON t.name = r.course",
            [target.name],
        ).fetchall()
        skills = con.execute(
            "SELECT skill FROM credly_badge_templates_skills WHERE badge_template_id = ? ORDER BY position",
            [target.id],
        ).fetchall()
    assert row == [(target.id, "active", False)]
    assert [s for (s,) in skills] == list(target.skills)
    # a second load upserts by id: no duplicates
    assert op.execute({"ti": _TI(), "run_id": "r2"})["rows"] == 55  # type: ignore[arg-type]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT COUNT(*) FROM credly_badge_templates").fetchone() == (55,)


def test_employee_external_badges_per_and_resumable_pages(credly_emulator):
    client = _client(credly_emulator)
    everything = list(client.iter_employee_external_badges())
    assert len(everything) > 3
    pages = list(client.iter_employee_external_badge_pages(per=2))
    assert all(p.metadata["per"] == 2 for p in pages) and len(pages[0]) == 2
    assert [b for p in pages for b in p.items] == everything
    resumed = list(client.iter_employee_external_badge_pages(per=2, start_url=pages[0].next_url))
    assert [b for p in resumed for b in p.items] == everything[2:]
    one = everything[0]["employee"]["id"]
    assert {b["employee"]["id"] for b in client.iter_employee_external_badges(one, per=1)} == {one}
    with pytest.raises(ValueError, match="per must be an integer from 1 to 50"):
        list(client.iter_employee_external_badge_pages(per=51))


def _canvas(emu: Any) -> CanvasCredentialsClient:
    return CanvasCredentialsClient.create(emu.username, emu.password, base_url=emu.base_url, retry=FAST)


def test_canvas_notify_on_single_and_bulk_awards(canvas_emulator):
    state = canvas_emulator.state
    client = _canvas(canvas_emulator)
    badge_class = state.badge_class_ids[0]
    told = client.issue_assertion(
        "badgeclasses", badge_class, recipient_identity="n1@example.edu", notify=True
    )
    silent = client.issue_assertion(
        "badgeclasses", badge_class, recipient_identity="n2@example.edu", notify=False
    )
    assert state.notified == [told["entityId"]]
    assert silent["entityId"] not in state.notified
    rows = validate_assertion_rows(
        [{"recipient_email": "n3@example.edu"}, {"recipient_email": "n4@example.edu", "notify": False}],
        {"badgeclass": badge_class, "notify": True},
    )
    report = run_bulk_award(client, rows, workers=2)
    assert report.counts()["issued"] == 2
    assert len(state.notified) == 2 and state.stats["notifications_sent"] == 2
    with pytest.raises(Exception, match="notify must be true or false"):
        validate_assertion_rows(
            [{"recipient_email": "x@example.edu", "badgeclass": badge_class, "notify": "y"}]
        )


def test_canvas_include_staff_on_issuer_writes(canvas_emulator):
    client = _canvas(canvas_emulator)
    fields = {"name": "Dept", "email": "dept@example.edu", "url": "https://example.edu"}
    created = client.create_issuer(include_staff=False, **fields)
    assert "staff" not in created
    assert "staff" in client.create_issuer(**fields)
    issuer = created["entityId"]
    patched = client.update_issuer(issuer, include_staff=False, description="d")
    assert patched["description"] == "d" and "staff" not in patched
    replaced = client.replace_issuer(issuer, include_staff=True, description="e", **fields)
    assert replaced["staff"] and replaced["description"] == "e"
