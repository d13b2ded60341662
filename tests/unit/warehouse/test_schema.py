"""Table definitions: DDL per dialect, row extraction from both badge formats, table names."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_credly.warehouse.schema import (
    BADGES,
    EMPLOYEES,
    TableName,
    child_rows,
    create_table_sql,
    extract_row,
)

DEFAULT = {
    "id": "b1",
    "state": "revoked",
    "recipient_email": "a@example.com",
    "issued_to": "Ada Lovelace",
    "public": False,
    "issued_at": "2025-08-06T14:41:00.000Z",
    "expires_at": None,
    "updated_at": "2025-08-06T15:00:00.000-05:00",
    "revocation_reason": "oops",
    "replacement_badge_id": None,
    "badge_template": {"id": "t1", "name": "Cloud Expert", "skills": ["Cloud", "Ops"]},
    "user": {"id": "u1"},
    "evidence": [{"id": "e1", "type": "UrlEvidence", "name": "Site", "value": "http://x"}],
}
MINIMAL = {
    "id": "b2",
    "state": "accepted",
    "badge_template": {"id": "t2", "name": "Data"},
    "user": {"id": "u2"},
}


def _as_dict(row):
    return dict(zip([c.name for c in BADGES.columns], row, strict=True))


def test_extract_row_default_format():
    row = _as_dict(extract_row(BADGES, DEFAULT))
    assert row["id"] == "b1"
    assert row["badge_template_id"] == "t1"
    assert row["badge_template_name"] == "Cloud Expert"
    assert row["user_id"] == "u1"
    assert row["public"] is False
    assert row["issued_at"] == datetime(2025, 8, 6, 14, 41, tzinfo=UTC)
    assert row["updated_at"] == datetime(2025, 8, 6, 20, 0, tzinfo=UTC)  # offset converted to UTC
    assert row["expires_at"] is None
    assert row["revocation_reason"] == "oops"
    assert json.loads(row["raw"]) == DEFAULT


def test_extract_row_minimal_format_leaves_missing_fields_null():
    row = _as_dict(extract_row(BADGES, MINIMAL))
    assert row["badge_template_id"] == "t2"
    assert row["revocation_reason"] is None
    assert row["issued_at"] is None
    assert json.loads(row["raw"]) == MINIMAL


def test_child_rows_from_strings_and_objects():
    skills, evidence = BADGES.children
    assert child_rows(BADGES, skills, DEFAULT) == [("b1", 0, "Cloud"), ("b1", 1, "Ops")]
    assert child_rows(BADGES, evidence, DEFAULT) == [("b1", 0, "e1", "UrlEvidence", "Site", None, "http://x")]
    assert child_rows(BADGES, skills, MINIMAL) == []


@pytest.mark.parametrize(
    ("dialect", "ts", "js"),
    [("duckdb", "TIMESTAMP", "JSON"), ("postgres", "TIMESTAMPTZ", "JSONB"), ("generic", "TIMESTAMP", "TEXT")],
)
def test_ddl_types_per_dialect(dialect, ts, js):
    main, skills, evidence = create_table_sql(BADGES, TableName.parse("wh.badges"), dialect, children=True)
    assert main.startswith("CREATE TABLE IF NOT EXISTS wh.badges (id ")
    if dialect == "duckdb":  # no in-memory ART index: the writer keeps ids unique
        assert "id VARCHAR NOT NULL," in main
        assert "PRIMARY KEY" not in main
    else:
        assert "id TEXT NOT NULL PRIMARY KEY" in main
    assert f"issued_at {ts}" in main
    assert f"raw {js}" in main
    assert "_load_id" in main
    assert "_loaded_at" in main
    assert "wh.badges_skills" in skills
    assert "PRIMARY KEY (badge_id, position)" in evidence
    assert create_table_sql(EMPLOYEES, TableName.parse("e"), dialect) == [
        create_table_sql(EMPLOYEES, TableName("e"), dialect)[0]
    ]


@pytest.mark.parametrize("bad", ["", "a.b.c", "x;drop table y", "1abc", "a-b", "a. b"])
def test_table_name_rejects_unsafe_names(bad):
    with pytest.raises(ValueError, match="table"):
        TableName.parse(bad)


def test_table_name_parts():
    name = TableName.parse("analytics.credly_badges")
    assert (name.schema, name.name, str(name)) == ("analytics", "credly_badges", "analytics.credly_badges")
    assert str(name.sibling("x")) == "analytics.x"
    assert str(TableName.parse("t").sibling("x")) == "x"


@pytest.mark.parametrize(
    ("text", "parts"),
    [("t", (None, "t")), ("_t1", (None, "_t1")), ("wh.badges", ("wh", "badges")), (" wh.b ", ("wh", "b"))],
)
def test_table_name_accepts_table_or_schema_table(text, parts):
    name = TableName.parse(text)
    assert (name.schema, name.name) == parts


def test_table_name_refuses_a_catalog_part_and_says_the_rule():
    # the one rule for every writer: [schema.]table (SQLite has no catalogs)
    with pytest.raises(ValueError, match=r"'table' or 'schema\.table'"):
        TableName.parse("db.wh.badges")
