"""Canvas Credentials to SQL: stream the assertions of an issuer or a badge class into a warehouse table.

Same machinery as the Credly transfers (:mod:`airflow_provider_credly.warehouse`: typed schema, DuckDB /
PostgreSQL bulk writers, checkpoint committed with each batch, bounded fetch/write pipeline) and the same
operator base; only the table definition and the page source differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_credly.client.canvas import MAX_PAGE_SIZE
from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.hooks.canvas_credentials import CanvasCredentialsHook
from airflow_provider_credly.lineage import DatasetRef, canvas_collection
from airflow_provider_credly.transfers.base import PageOpener, SqlTransferOperator
from airflow_provider_credly.warehouse.schema import ChildSpec, Column, TableSpec

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CANVAS_ASSERTIONS", "CanvasCredentialsAssertionsToSqlOperator", "keyed_pages"]

KEY = "entity_id"

CANVAS_ASSERTIONS = TableSpec(
    "canvas_assertions",
    (
        Column(KEY, (KEY,)),
        Column("id", ("id",)),
        Column("open_badge_id", ("openBadgeId",)),
        Column("badgeclass", ("badgeclass",)),
        Column("badgeclass_open_badge_id", ("badgeclassOpenBadgeId",)),
        Column("issuer", ("issuer",)),
        Column("issuer_open_badge_id", ("issuerOpenBadgeId",)),
        Column("recipient_identity", ("recipient", "identity")),
        Column("recipient_type", ("recipient", "type")),
        Column("recipient_hashed", ("recipient", "hashed"), "bool"),
        Column("recipient_plaintext_identity", ("recipient", "plaintextIdentity")),
        Column("issued_on", ("issuedOn",), "timestamp"),
        Column("created_at", ("createdAt",), "timestamp"),
        Column("created_by", ("createdBy",)),
        Column("expires", ("expires",), "timestamp"),
        Column("revoked", ("revoked",), "bool"),
        Column("revocation_reason", ("revocationReason",)),
        Column("acceptance", ("acceptance",)),
        Column("pending", ("pending",), "bool"),
        Column("narrative", ("narrative",)),
        Column("source", ("source",)),
        Column("image", ("image",)),
        Column("raw", (), "json"),
    ),
    children=(
        ChildSpec(
            "evidence",
            ("evidence",),
            (
                Column("url", ("url",)),
                Column("name", ("name",)),
                Column("narrative", ("narrative",)),
                Column("description", ("description",)),
                Column("genre", ("genre",)),
                Column("audience", ("audience",)),
            ),
        ),
    ),
    key=KEY,
)
"""One row per assertion, keyed by ``entity_id`` (the API's ``entityId``); the ``raw`` column keeps the
record as received (plus its ``entity_id``). Child table ``<table>_evidence``."""


def keyed_pages(pages: Iterator[Page]) -> Iterator[Page]:
    """The pages with each assertion's ``entityId`` copied to ``entity_id`` (the table's key)."""
    for page in pages:
        items = [{**item, KEY: item.get("entityId")} for item in page.items]
        yield Page(items, page.url, page.next_url, page.metadata)


class CanvasCredentialsAssertionsToSqlOperator(SqlTransferOperator):
    """Load the assertions of an issuer or a badge class into a SQL table, idempotently and resumably.

    One row per assertion (primary key ``entity_id``; typed columns plus the raw JSON), upserted, so reruns
    never duplicate. Revoked and expired assertions are included by default (the API leaves them out
    unless asked), so revocations reach the warehouse as ``revoked = true``. Pages (``num`` per request,
    ``Link`` cursor followed verbatim) are fetched in a background thread while the previous batch is
    written; each batch commits with a checkpoint in the destination, so a retry resumes after the last
    committed page. Returns a JSON summary (rows, pages, load id...).

    :param table: destination table, ``table`` or ``schema.table``; created if missing.
    :param issuer_id: load the assertions of this issuer (entityId)...
    :param badge_class_id: ...or of this badge class (give exactly one).
    :param recipient: only this recipient's assertions.
    :param include_revoked: include revoked assertions (default ``True``).
    :param include_expired: include expired assertions (default ``True``).
    :param page_size: ``num`` per request (1..500).
    :param canvas_credentials_conn_id: the Canvas Credentials connection.
    :param destination_conn_id: any common.sql connection (DuckDB, PostgreSQL, SQLite...).
    :param prune: after a full load without ``recipient``, delete rows it did not see.
    :param include_child_tables: also maintain ``<table>_evidence``.
    :param page_queue_size: complete write batches fetched ahead of the writer (memory bound).
    :param batch_rows: records per write transaction (and checkpoint).
    :param checkpoint_key: override the checkpoint key (templated).
    """

    spec = CANVAS_ASSERTIONS
    template_fields: Sequence[str] = (
        "canvas_credentials_conn_id",
        "destination_conn_id",
        "table",
        "checkpoint_key",
        "raw_json_type",
        "issuer_id",
        "badge_class_id",
        "recipient",
    )
    ui_color = "#e6f4ff"

    def __init__(
        self,
        *,
        issuer_id: str | None = None,
        badge_class_id: str | None = None,
        recipient: str | None = None,
        include_revoked: bool = True,
        include_expired: bool = True,
        page_size: int = MAX_PAGE_SIZE,
        canvas_credentials_conn_id: str = CanvasCredentialsHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.issuer_id = issuer_id
        self.badge_class_id = badge_class_id
        self.recipient = recipient
        self.include_revoked = include_revoked
        self.include_expired = include_expired
        self.page_size = page_size
        self.canvas_credentials_conn_id = canvas_credentials_conn_id

    @cached_property
    def canvas_hook(self) -> CanvasCredentialsHook:
        """The Canvas Credentials hook (built on first use)."""
        return CanvasCredentialsHook(self.canvas_credentials_conn_id)

    def source_dataset(self, request: Mapping[str, Any]) -> DatasetRef | None:
        """``canvas-credentials://<API host>`` + ``<issuers|badgeclasses>/<id>/assertions``."""
        path = f"{request['scope']}/{request['entity_id']}/assertions"
        return canvas_collection(str(request["base_url"]), path)

    def build_request(
        self, context: Context, *, bootstrap: bool = False
    ) -> tuple[PageOpener, dict[str, Any]]:
        if bool(self.issuer_id) == bool(self.badge_class_id):
            raise ValueError("give exactly one of issuer_id or badge_class_id")
        if not 1 <= int(self.page_size) <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {self.page_size!r}")
        scope = "issuers" if self.issuer_id else "badgeclasses"
        entity_id = str(self.issuer_id or self.badge_class_id)
        client = self.canvas_hook.client
        options = {
            "recipient": self.recipient or None,
            "include_revoked": bool(self.include_revoked),
            "include_expired": bool(self.include_expired),
            "num": int(self.page_size),
        }

        def open_pages(start_url: str | None) -> Iterator[Page]:
            pages = client.iter_assertion_pages(scope, entity_id, start_url=start_url, **options)  # type: ignore[arg-type]
            return keyed_pages(pages)

        request = {
            "endpoint": "canvas_credentials_assertions",
            "base_url": client.http.base_url,
            "scope": scope,
            "entity_id": entity_id,
            "mode": "full",
            "filter": self.recipient or None,
            **{k: v for k, v in options.items() if k != "recipient"},
        }
        return open_pages, request
