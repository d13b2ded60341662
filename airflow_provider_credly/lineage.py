"""Lineage of the package's tasks: where a transfer's table lives (as the destination's own provider names
it, for Assets and OpenLineage) and which API collection a task reads or writes.

Names follow the destination providers: PostgreSQL ``postgres://host:port`` with ``database.schema.table``
(the Asset ``postgres://host:port/database/schema/table``, as ``apache-airflow-providers-postgres``
builds it); DuckDB, whose provider declares no scheme, ``duckdb://<database file>`` with
``catalog.schema.table`` (the catalog is the file's stem, as DuckDB names it; the Asset
``duckdb:<database file>/schema/table``); SQLite alike. Any other common.sql database is named by its
hook's ``get_openlineage_database_info`` when OpenLineage is installed, else ``<conn type>://host:port``.

OpenLineage is optional: nothing here imports it until :func:`operator_lineage` is called (by the
OpenLineage listener, which only runs when the provider is installed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from airflow_provider_credly.warehouse.schema import TableSpec

__all__ = [
    "DatasetRef",
    "TableLocation",
    "api_dataset",
    "canvas_collection",
    "credly_collection",
    "operator_lineage",
    "table_location",
]

#: the connection types named like PostgreSQL (``postgres`` is Airflow's, ``postgresql`` the URL form's)
_POSTGRES = ("postgres", "postgresql")
#: file databases: the location is the database file
_FILE_DATABASES = {"duckdb": "main", "sqlite": "main"}


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as OpenLineage names it (``namespace`` + ``name``), with its columns when known.

    :param fields: ``(column, type)`` pairs for the schema facet.
    :param rows: rows written, for an output's statistics facet.
    """

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    rows: int | None = None


@dataclass(frozen=True)
class TableLocation:
    """A destination table named as its database's provider names it.

    :param scheme: ``postgres``, ``duckdb``, ``sqlite`` or another connection type.
    :param authority: ``host:port``, or the database file of a file database.
    :param database: the database (PostgreSQL) or catalog (DuckDB), if any.
    :param schema: the table's schema (the database's default when the table name has none).
    :param table: the table's name.
    """

    scheme: str
    authority: str
    database: str | None
    schema: str | None
    table: str

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace: ``<scheme>://<authority>``."""
        return f"{self.scheme}://{self.authority}" if self.authority else self.scheme

    @property
    def name(self) -> str:
        """The OpenLineage dataset name: ``database.schema.table`` (parts that exist)."""
        return ".".join(p for p in (self.database, self.schema, self.table) if p)

    @property
    def uri(self) -> str:
        """The Asset URI: ``postgres://host:port/database/schema/table``; a file database's file stands
        for the host and database: ``duckdb:/path/warehouse.duckdb/main/table`` (Airflow keeps no ``//``
        before an empty host)."""
        if self.scheme in _FILE_DATABASES:
            return f"{self.scheme}:{self.authority}/{self.schema or 'main'}/{self.table}"
        parts = (self.database, self.schema, self.table)
        return f"{self.namespace}/" + "/".join(p or "default" for p in parts)

    def child(self, table: str) -> TableLocation:
        """The location of another table in the same schema (a child table)."""
        return TableLocation(self.scheme, self.authority, self.database, self.schema, table)

    def asset(self, extra: Mapping[str, Any] | None = None) -> Asset:
        """The Asset of this table (its name is its URI, as the PostgreSQL provider's assets)."""
        from airflow.sdk import Asset

        return Asset(uri=self.uri, name=self.uri, extra=dict(extra or {}))

    def dataset(self, spec: TableSpec | None = None, rows: int | None = None) -> DatasetRef:
        """This table as an OpenLineage dataset (with ``spec``'s columns and the rows written)."""
        fields = tuple((c.name, c.kind) for c in spec.columns) if spec is not None else ()
        return DatasetRef(self.namespace, self.name, fields, rows)


def _file_location(database: str) -> tuple[str, str | None]:
    """(authority, catalog) of a file database; credentials in a DSN (``md:db?motherduck_token=``) are cut."""
    database = database.split("?", 1)[0]
    if database in ("", ":memory:") or database.startswith("md:"):
        return database or ":memory:", database.removeprefix("md:") or None
    path = os.path.abspath(os.path.expanduser(database))
    return path, os.path.splitext(os.path.basename(path))[0]


def table_location(conn: Any, hook: Any, table: str) -> TableLocation:
    """Where ``table`` (``table`` or ``schema.table``) lives on the destination connection ``conn``.

    :param conn: the destination's Airflow connection (``conn_type``, ``host``, ``port``, ``schema``), or
        ``None`` when it is not defined (``duckdb_default``: an in-memory database).
    :param hook: its common.sql hook (the DuckDB hook knows its database file; others' OpenLineage
        database info is asked for when the provider is installed).
    """
    schema, _, name = table.rpartition(".")
    conn_type = str(getattr(conn, "conn_type", None) or getattr(hook, "conn_type", "") or "").lower()
    host, port = getattr(conn, "host", None) or "", getattr(conn, "port", None)
    database = getattr(conn, "schema", None) or None
    if conn_type in _POSTGRES:
        return TableLocation(
            "postgres", f"{host or 'localhost'}:{port or 5432}", database, schema or "public", name
        )
    if conn_type in _FILE_DATABASES:
        get_database = getattr(hook, "get_database", None)
        authority, catalog = _file_location(str(get_database() if callable(get_database) else host))
        return TableLocation(conn_type, authority, catalog, schema or _FILE_DATABASES[conn_type], name)
    info = _openlineage_database_info(hook, conn) if conn is not None else None
    if info is not None:
        scheme, authority, database = info
        return TableLocation(scheme, authority, database, schema or None, name)
    authority = host + (f":{port}" if port else "")
    return TableLocation(conn_type or "sql", authority, database, schema or None, name)


def _openlineage_database_info(hook: Any, conn: Any) -> tuple[str, str, str | None] | None:
    """``(scheme, authority, database)`` from the hook's own OpenLineage naming, when it has one."""
    try:
        info = hook.get_openlineage_database_info(conn)
    except Exception:  # OpenLineage not installed, or the hook needs more than the connection
        return None
    if info is None or not getattr(info, "scheme", None):
        return None
    return str(info.scheme), str(info.authority or ""), getattr(info, "database", None) or None


def api_dataset(scheme: str, base_url: str, path: str) -> DatasetRef:
    """An API collection as a dataset: namespace ``<scheme>://<host[:port]>`` of the API base URL,
    name the collection's path (``organizations/<org>/badges``).

    :param scheme: ``credly`` or ``canvas-credentials``.
    """
    return DatasetRef(f"{scheme}://{urlsplit(base_url).netloc}", path.strip("/"))


def credly_collection(base_url: str, organization_id: str | None, collection: str) -> DatasetRef:
    """A Credly organization's collection (``badges``, ``employees``, ``events``) as a dataset:
    ``credly://api.credly.com`` + ``organizations/<org>/<collection>``."""
    return api_dataset("credly", base_url, f"organizations/{organization_id or 'unknown'}/{collection}")


def canvas_collection(base_url: str, path: str) -> DatasetRef:
    """A Canvas Credentials collection (``issuers/<id>/assertions``, ``badgeclasses/<id>/assertions``) as a
    dataset: ``canvas-credentials://api.badgr.io`` + the path."""
    return api_dataset("canvas-credentials", base_url, path)


def operator_lineage(
    inputs: Iterable[DatasetRef] = (),
    outputs: Iterable[DatasetRef] = (),
    job_facets: Mapping[str, Any] | None = None,
) -> Any:
    """The ``OperatorLineage`` of a task (imports OpenLineage: call it from
    ``get_openlineage_facets_on_complete`` only)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[_ol_dataset(d, output=False) for d in inputs],
        outputs=[_ol_dataset(d, output=True) for d in outputs],
        job_facets=dict(job_facets or {}),
    )


def _ol_dataset(ref: DatasetRef, *, output: bool) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if ref.fields:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in ref.fields]
        )
    dataset = Dataset(namespace=ref.namespace, name=ref.name, facets=facets)
    if output and ref.rows is not None:
        from airflow.providers.common.compat.openlineage.facet import OutputDataset

        return OutputDataset(
            namespace=ref.namespace,
            name=ref.name,
            facets=facets,
            outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=ref.rows)},
        )
    return dataset
