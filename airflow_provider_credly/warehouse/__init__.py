"""Warehouse loading, without Airflow: table schemas, dialect writers, checkpoints and the fetch/write pipeline."""

from __future__ import annotations

from airflow_provider_credly.warehouse.checkpoint import CHECKPOINT_TABLE, Checkpoint, CheckpointStore
from airflow_provider_credly.warehouse.pipeline import PagePipeline, Progress, batches
from airflow_provider_credly.warehouse.schema import (
    BADGES,
    EMPLOYEES,
    EVENTS,
    Column,
    TableName,
    TableSpec,
    create_table_sql,
    extract_row,
)
from airflow_provider_credly.warehouse.transfer import TransferResult, TransferRun, run_transfer
from airflow_provider_credly.warehouse.writers import (
    DuckDBWriter,
    LoadMeta,
    PostgresWriter,
    SqlWriter,
    dialect_of,
    writer_for,
)

__all__ = [
    "BADGES",
    "CHECKPOINT_TABLE",
    "EMPLOYEES",
    "EVENTS",
    "Checkpoint",
    "CheckpointStore",
    "Column",
    "DuckDBWriter",
    "LoadMeta",
    "PagePipeline",
    "PostgresWriter",
    "Progress",
    "SqlWriter",
    "TableName",
    "TableSpec",
    "TransferResult",
    "TransferRun",
    "batches",
    "create_table_sql",
    "dialect_of",
    "extract_row",
    "run_transfer",
    "writer_for",
]
