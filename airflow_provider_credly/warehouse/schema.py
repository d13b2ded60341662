"""Warehouse table definitions: typed columns per record kind, DDL per SQL dialect, row extraction.

One :class:`TableSpec` per Credly record kind (badges, employees, events). Each column names the JSON path
it is read from, so the same definition drives the DDL, the Python row extraction (generic dialects) and the
in-database JSON extraction of the bulk paths (DuckDB, PostgreSQL). Every table also keeps the record's
raw JSON and two load columns: ``_load_id`` (the load that wrote the row last) and ``_loaded_at`` (UTC).
No Airflow import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_credly.client.times import parse_timestamp

__all__ = [
    "BADGES",
    "BADGE_TEMPLATES",
    "EMPLOYEES",
    "EVENTS",
    "LOAD_COLUMNS",
    "RAW",
    "ChildSpec",
    "Column",
    "Dialect",
    "Kind",
    "TableName",
    "TableSpec",
    "child_rows",
    "column_type",
    "create_table_sql",
    "extract_row",
]

Kind = Literal["text", "timestamp", "bool", "int", "json"]
Dialect = Literal["duckdb", "postgres", "generic"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_TYPES: Mapping[str, Mapping[str, str]] = {
    # DuckDB timestamps are plain TIMESTAMP holding UTC: reading TIMESTAMPTZ into Python needs pytz.
    "duckdb": {
        "text": "VARCHAR",
        "timestamp": "TIMESTAMP",
        "bool": "BOOLEAN",
        "int": "BIGINT",
        "json": "JSON",
    },
    "postgres": {
        "text": "TEXT",
        "timestamp": "TIMESTAMPTZ",
        "bool": "BOOLEAN",
        "int": "BIGINT",
        "json": "JSONB",
    },
    "generic": {"text": "TEXT", "timestamp": "TIMESTAMP", "bool": "BOOLEAN", "int": "BIGINT", "json": "TEXT"},
}


@dataclass(frozen=True)
class Column:
    """A typed column read from ``path`` in the record (``("badge_template", "id")``)."""

    name: str
    path: tuple[str, ...]
    kind: Kind = "text"


@dataclass(frozen=True)
class ChildSpec:
    """A child table holding one row per element of the list at ``path`` (e.g. a badge's skills).

    Its columns are ``<parent>_id``, ``position`` and ``columns`` read from each element; an element that is
    a plain string fills the first column.
    """

    suffix: str
    path: tuple[str, ...]
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class TableSpec:
    """Columns of one record kind. ``key`` is the primary key column (always ``id``)."""

    kind: str
    columns: tuple[Column, ...]
    children: tuple[ChildSpec, ...] = ()
    key: str = "id"

    @property
    def parent_key(self) -> str:
        """Name of the key column in child tables (``badge_id``)."""
        return f"{self.kind.rstrip('s')}_id"


def _c(name: str, *path: str, kind: Kind = "text") -> Column:
    return Column(name, path or (name,), kind)


RAW = Column("raw", (), "json")  # the whole record
LOAD_COLUMNS = (Column("_load_id", (), "text"), Column("_loaded_at", (), "timestamp"))

BADGES = TableSpec(
    "badges",
    (
        _c("id"),
        _c("state"),
        _c("badge_template_id", "badge_template", "id"),
        _c("badge_template_name", "badge_template", "name"),
        _c("recipient_email"),
        _c("user_id", "user", "id"),
        _c("issuer_earner_id"),
        _c("issued_to"),
        _c("issued_to_first_name"),
        _c("issued_to_middle_name"),
        _c("issued_to_last_name"),
        _c("locale"),
        _c("public", kind="bool"),
        _c("issued_at", kind="timestamp"),
        _c("expires_at", kind="timestamp"),
        _c("created_at", kind="timestamp"),
        _c("updated_at", kind="timestamp"),
        _c("state_updated_at", kind="timestamp"),
        _c("replacement_badge_id"),
        _c("replaces_badge_id"),
        _c("revocation_reason"),
        _c("badge_url"),
        RAW,
    ),
    children=(
        ChildSpec("skills", ("badge_template", "skills"), (_c("skill"),)),
        ChildSpec(
            "evidence",
            ("evidence",),
            (_c("evidence_id", "id"), _c("type"), _c("name"), _c("description"), _c("value")),
        ),
    ),
)

EMPLOYEES = TableSpec(
    "employees",
    (
        _c("id"),
        _c("email"),
        _c("external_id"),
        _c("first_name"),
        _c("last_name"),
        _c("full_name"),
        _c("employee_state"),
        _c("employee_state_updated_at", kind="timestamp"),
        _c("last_invitation_sent_at", kind="timestamp"),
        _c("created_at", kind="timestamp"),
        _c("team"),
        _c("position_title"),
        _c("department"),
        _c("manager_external_id"),
        _c("country"),
        _c("state_or_province"),
        RAW,
    ),
)

EVENTS = TableSpec(
    "events",
    (
        _c("id"),
        _c("event_type"),
        _c("organization_id"),
        _c("occurred_at", kind="timestamp"),
        _c("badge_id", "badge", "id"),
        RAW,
    ),
)


BADGE_TEMPLATES = TableSpec(
    "badge_templates",
    (
        _c("id"),
        _c("name"),
        _c("state"),
        _c("description"),
        _c("vanity_slug"),
        _c("visibility"),
        _c("public", kind="bool"),
        _c("allow_duplicate_badges", kind="bool"),
        _c("badges_count", kind="int"),
        _c("level"),
        _c("time_to_earn"),
        _c("cost"),
        _c("type_category"),
        _c("url"),
        _c("image_url"),
        _c("owner_id", "owner", "id"),
        _c("created_at", kind="timestamp"),
        _c("updated_at", kind="timestamp"),
        _c("state_updated_at", kind="timestamp"),
        RAW,
    ),
    children=(ChildSpec("skills", ("skills",), (_c("skill"),)),),
)


@dataclass(frozen=True)
class TableName:
    """A validated, optionally schema-qualified table name (``analytics.credly_badges``).

    The package's one table-name rule, for the tables it writes and the tables it reads: ``table`` or
    ``schema.table``, each part an identifier of letters, digits and ``_`` not starting with a digit
    (nothing to quote, nothing to inject). A third part (``catalog.schema.table``) is refused: SQLite has
    no catalogs and PostgreSQL only names its current database there, so not every writer could use it.
    """

    name: str
    schema: str | None = None

    @classmethod
    def parse(cls, text: str) -> TableName:
        """Split and validate ``[schema.]table`` (surrounding blanks ignored).

        :raises ValueError: an empty or unsafe name, or more than two parts.
        """
        parts = str(text or "").strip().split(".")
        if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
            raise ValueError(
                f"table name {text!r} must be an identifier like 'table' or 'schema.table' "
                "(letters, digits and underscores)"
            )
        return cls(parts[-1], parts[0] if len(parts) == 2 else None)

    def sibling(self, name: str) -> TableName:
        """A table in the same schema."""
        return TableName(name, self.schema)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def column_type(kind: Kind, dialect: Dialect) -> str:
    """SQL type of a column kind in a dialect."""
    return _TYPES[dialect][kind]


def child_columns(spec: TableSpec, child: ChildSpec) -> tuple[Column, ...]:
    """All columns of a child table: parent key, position, then the element's columns."""
    return (Column(spec.parent_key, ()), Column("position", (), "int"), *child.columns)


def create_table_sql(
    spec: TableSpec,
    table: TableName,
    dialect: Dialect,
    *,
    children: bool = False,
    json_type: str | None = None,
) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` statements for the table (and its child tables when asked).

    :param json_type: the SQL type of the JSON columns (``raw``) instead of the dialect's.
    """
    cols = [*spec.columns, *LOAD_COLUMNS]
    # DuckDB keeps a primary key's ART index fully in memory (about 100+ bytes per row, never evicted), which
    # makes memory grow with the table: there the key is NOT NULL and kept unique by the writer instead.
    key_clause = " NOT NULL" if dialect == "duckdb" else " NOT NULL PRIMARY KEY"
    # Whole JSON records compress about 2x better with zstd (DuckDB >= 1.2) than with DuckDB's default
    # choice for strings, and checkpoints spend less time compressing them.
    raw_clause = " USING COMPRESSION zstd" if dialect == "duckdb" else ""
    body = ", ".join(
        f"{c.name} {json_type if json_type and c.kind == 'json' else column_type(c.kind, dialect)}"
        + (key_clause if c.name == spec.key else "")
        + (raw_clause if c.name == RAW.name else "")
        for c in cols
    )
    out = [f"CREATE TABLE IF NOT EXISTS {table} ({body})"]
    if children:
        for child in spec.children:
            ccols = child_columns(spec, child)
            cbody = ", ".join(f"{c.name} {column_type(c.kind, dialect)}" for c in ccols)
            name = table.sibling(f"{table.name}_{child.suffix}")
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name} ({cbody}, PRIMARY KEY ({spec.parent_key}, position))"
            )
    return out


def _get(item: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` (the whole record for an empty path); ``None`` when any step is missing."""
    value: Any = item
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _value(column: Column, item: Mapping[str, Any]) -> Any:
    value = _get(item, column.path)
    if column.kind == "timestamp":
        return parse_timestamp(value)
    if column.kind == "bool":
        return None if value is None else bool(value)
    if column.kind == "json":
        return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def extract_row(spec: TableSpec, item: Mapping[str, Any], *, raw: bool = True) -> tuple[Any, ...]:
    """The typed values of ``spec.columns`` for one record (any badge format: missing fields are ``None``).

    Timestamps become aware UTC datetimes, booleans ``bool``, the ``raw`` column the record's JSON text
    (``None`` when not ``raw``).
    """
    return tuple(None if not (raw or c.path) else _value(c, item) for c in spec.columns)


def child_rows(spec: TableSpec, child: ChildSpec, item: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one child table for one record: ``(parent_id, position, *element columns)``."""
    elements = _get(item, child.path)
    if not isinstance(elements, list):
        return []
    parent = str(item[spec.key])
    out = []
    for pos, element in enumerate(elements):
        if isinstance(element, Mapping):
            values = tuple(_value(c, element) for c in child.columns)
        else:
            values = (None if element is None else str(element),) + (None,) * (len(child.columns) - 1)
        out.append((parent, pos, *values))
    return out
