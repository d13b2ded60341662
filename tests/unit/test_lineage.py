"""Names of lineage datasets and Assets: as the destination's provider names them, never a credential."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_credly.lineage import (
    DatasetRef,
    api_dataset,
    canvas_collection,
    credly_collection,
    operator_lineage,
    table_location,
)
from airflow_provider_credly.warehouse.schema import BADGES


def _conn(conn_type: str, host: str = "", port: int | None = None, schema: str = "") -> SimpleNamespace:
    return SimpleNamespace(conn_type=conn_type, host=host, port=port, schema=schema)


def test_postgres_as_the_postgres_provider_names_it():
    loc = table_location(_conn("postgres", "db.example.com", None, "analytics"), object(), "credly_badges")
    assert (loc.namespace, loc.name) == ("postgres://db.example.com:5432", "analytics.public.credly_badges")
    assert loc.uri == "postgres://db.example.com:5432/analytics/public/credly_badges"
    other = table_location(_conn("postgres", "db", 6543, "wh"), object(), "mart.badges")
    assert other.uri == "postgres://db:6543/wh/mart/badges"
    assert other.asset().uri == other.asset().name == other.uri


def test_duckdb_file_is_the_namespace_and_its_stem_the_catalog(tmp_path):
    hook = SimpleNamespace(get_database=lambda: str(tmp_path / "wh.duckdb"))
    loc = table_location(_conn("duckdb", "ignored"), hook, "credly_badges")
    assert (loc.namespace, loc.name) == (f"duckdb://{tmp_path}/wh.duckdb", "wh.main.credly_badges")
    assert loc.uri == f"duckdb:{tmp_path}/wh.duckdb/main/credly_badges"
    assert loc.asset().uri == loc.uri  # Airflow keeps the URI as built
    assert loc.child("credly_badges_skills").name == "wh.main.credly_badges_skills"


def test_duckdb_without_a_connection_and_motherduck_token_is_cut():
    memory = table_location(None, SimpleNamespace(conn_type="duckdb", get_database=lambda: ":memory:"), "t")
    assert memory.namespace == "duckdb://:memory:"
    md = SimpleNamespace(get_database=lambda: "md:analytics?motherduck_token=SECRET-123")
    loc = table_location(_conn("duckdb"), md, "t")
    assert "SECRET" not in loc.namespace + loc.name + loc.uri
    assert loc.namespace == "duckdb://md:analytics"


def test_other_databases_use_the_hooks_openlineage_naming_else_their_host():
    info = SimpleNamespace(scheme="snowflake", authority="acct.eu", database="DB")
    hook = SimpleNamespace(get_openlineage_database_info=lambda conn: info)
    loc = table_location(_conn("snowflake"), hook, "s.t")
    assert (loc.namespace, loc.name) == ("snowflake://acct.eu", "DB.s.t")
    plain = table_location(_conn("mysql", "h", 3306, "db"), object(), "t")
    assert (plain.namespace, plain.name) == ("mysql://h:3306", "db.t")


def test_api_collections():
    assert credly_collection("https://api.credly.com/v1", "org-1", "badges") == DatasetRef(
        "credly://api.credly.com", "organizations/org-1/badges"
    )
    assert canvas_collection("https://api.eu.badgr.io", "issuers/I1/assertions").namespace == (
        "canvas-credentials://api.eu.badgr.io"
    )
    assert api_dataset("credly", "http://127.0.0.1:8765/v1", "/x/").name == "x"


def test_operator_lineage_has_schema_and_row_count():
    pytest.importorskip("airflow.providers.openlineage.extractors", reason="the dev extra installs it")
    table = table_location(_conn("postgres", "h", 5432, "db"), object(), "credly_badges").dataset(BADGES, 7)
    lineage = operator_lineage([credly_collection("https://api.credly.com/v1", "o", "badges")], [table])
    (source,), (out,) = lineage.inputs, lineage.outputs
    assert (source.namespace, source.name) == ("credly://api.credly.com", "organizations/o/badges")
    assert (out.namespace, out.name) == ("postgres://h:5432", "db.public.credly_badges")
    assert [f.name for f in out.facets["schema"].fields] == [c.name for c in BADGES.columns]
    assert out.outputFacets["outputStatistics"].rowCount == 7


def test_the_provider_imports_without_openlineage():
    # a fresh interpreter where OpenLineage cannot be imported (its provider's metadata aside, which
    # Airflow's provider discovery reads when it is installed)
    import subprocess
    import sys

    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("openlineage") or (
            name.startswith("airflow.providers.openlineage.") and not name.endswith(".get_provider_info")
        ):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
import airflow_provider_credly.links.credly
import airflow_provider_credly.operators.badges
import airflow_provider_credly.operators.canvas_credentials
import airflow_provider_credly.operators.employees
import airflow_provider_credly.transfers.canvas_credentials_to_sql
import airflow_provider_credly.transfers.credly_to_sql
print(sorted(m for m in sys.modules if m.startswith("openlineage") or ".openlineage." in m))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] in (
        "[]",
        "['airflow.providers.openlineage.get_provider_info']",
    )
