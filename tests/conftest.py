"""Test set-up: an isolated Airflow home and metadata DB, and fixtures for real connections.

Airflow reads its configuration at import time, so the environment is prepared before anything
imports it.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="credly-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
# The repository root is the dags folder; .airflowignore limits parsing to dags_examples/ and tests/dags/.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT)

import pytest  # noqa: E402

# The emulator fixtures are opt-in (no pytest11 entry point), as for users: `-p <module>` or this line.
_EMULATOR_PLUGIN = "airflow_provider_credly.testing.pytest_plugin"


def _entry_point_loads_plugin() -> bool:
    """An install made before the entry point was dropped still loads the plugin; loading it twice fails."""
    from importlib.metadata import entry_points

    return any(ep.value == _EMULATOR_PLUGIN for ep in entry_points(group="pytest11"))


pytest_plugins = [] if _entry_point_loads_plugin() else [_EMULATOR_PLUGIN]

POSTGRES_DSN = os.environ.get(
    "CREDLY_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB, needed by ``dag.test()``."""
    from airflow.utils import db

    db.initdb()
    return _HOME


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    """Define an Airflow connection through its ``AIRFLOW_CONN_<ID>`` environment variable (JSON form)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


class CredlyEndpoint(Protocol):
    """What a connection needs of an emulator, in-process or subprocess."""

    base_url: str
    org_id: str
    token: str


def connect_credly(
    monkeypatch: pytest.MonkeyPatch,
    emulator: CredlyEndpoint,
    conn_id: str = "credly_default",
    *,
    token: str | None = None,
    **extra: object,
) -> None:
    """Define Credly connection ``conn_id`` pointing at ``emulator``, with fast retries.

    :param monkeypatch: the test's ``monkeypatch``; the connection is gone after the test.
    :param emulator: the emulator whose URL, token and organization id the connection uses.
    :param conn_id: the Airflow connection id.
    :param token: a token to send instead of the emulator's (a wrong one, for a 401).
    :param extra: connection extras over the defaults (the emulator's ``organization_id``,
        ``backoff_base=0.01``, ``backoff_max=0.2``); ``None`` leaves that key out of the connection.
    """
    fields = {"organization_id": emulator.org_id, "backoff_base": 0.01, "backoff_max": 0.2, **extra}
    set_connection(
        monkeypatch,
        conn_id,
        conn_type="credly",
        host=emulator.base_url,
        password=emulator.token if token is None else token,
        extra={key: value for key, value in fields.items() if value is not None},
    )


@pytest.fixture
def credly_conn(credly_emulator, monkeypatch: pytest.MonkeyPatch):
    """Connection ``credly_default`` pointing at the function's emulator, with fast retries."""
    connect_credly(monkeypatch, credly_emulator)
    return credly_emulator


@pytest.fixture
def duckdb_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Connection ``duckdb_warehouse``: a real DuckDB file in the test's temp dir."""
    path = tmp_path / "warehouse.duckdb"
    set_connection(monkeypatch, "duckdb_warehouse", conn_type="duckdb", host=str(path))
    return path


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure means "no server"; the reason is reported
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip (outside CI) or fail (under ``CI=true``) when PostgreSQL at 127.0.0.1:5432 is not reachable."""
    from tests.helpers import require

    problem = _postgres_reachable()
    require(None if problem is None else f"PostgreSQL at {POSTGRES_DSN!r} is not reachable: {problem}")


def set_postgres_warehouse(monkeypatch: pytest.MonkeyPatch, schema: str, options: str = "") -> None:
    """Connection ``postgres_warehouse`` to the real PostgreSQL, its sessions in ``schema`` (``search_path``)
    with ``options`` (more ``-c name=value``)."""
    set_connection(
        monkeypatch,
        "postgres_warehouse",
        conn_type="postgres",
        host="127.0.0.1",
        port=5432,
        login="postgres",
        schema="test",
        extra={"options": f"-c search_path={schema} {options}".strip()},
    )


@pytest.fixture
def postgres_conn(postgres_available, monkeypatch: pytest.MonkeyPatch):
    """Connection ``postgres_warehouse`` to the real PostgreSQL, with a fresh schema (``search_path``)
    dropped afterwards. Yields the schema name.
    """
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    set_postgres_warehouse(monkeypatch, schema)
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'drop schema if exists "{schema}" cascade')
