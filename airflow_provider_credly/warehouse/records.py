"""Records on their way to a table: a page's records kept as JSON text, with their keys and watermark.

The fetch thread turns each :class:`~airflow_provider_credly.client.pagination.Page` into
:class:`PageRecords` by reading only the key and ``updated_at`` of each record (msgspec skips the rest), so
the records are never built as Python objects: the bulk writers hand the text to the database, which
parses it itself (DuckDB ``from_json``, PostgreSQL ``jsonb``). No Airflow import.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.client.records_json import decode_records, encode_records

__all__ = [
    "WATERMARK_FIELD",
    "PageRecords",
    "dedupe_by_key",
    "page_records",
    "raw_records",
    "records_of",
    "split_records",
    "unique_records",
]

#: the record field whose newest value a load reports as its watermark
WATERMARK_FIELD = "updated_at"


@dataclass(frozen=True, slots=True)
class PageRecords:
    """The records of one page (or of a list of records) as one JSON array text, in UTF-8 bytes.

    Bytes, not ``str``: a page holding one character beyond Latin-1 (a Polish or Cyrillic name, an emoji)
    would make the whole page's ``str`` two or four bytes per character, and every database reads UTF-8.

    :ivar json: the records as a JSON array text (UTF-8).
    :ivar keys: each record's key, in order.
    :ivar newest: the greatest ``updated_at`` among the records (``None`` if none has one).
    :ivar url: the page's URL.
    :ivar next_url: the page's next URL: the cursor to resume from once this page is committed.
    :ivar partial: the first records of a page split where a commit falls (:func:`split_records`): the
        page counts once, with the rest of its records.
    :ivar split_rows: for the rest of a split page: the records of its head, counted with it.
    :ivar refetched: the first page of a cursor reopened at a saved checkpoint: its first records may be
        committed already (the head of a page split where the last commit fell).
    """

    json: bytes
    keys: tuple[str, ...]
    newest: str | None = None
    url: str = ""
    next_url: str | None = None
    partial: bool = False
    split_rows: int = 0
    refetched: bool = False

    @property
    def counted_rows(self) -> int:
        """The records this part adds to a checkpoint's count (a split page's all with its last part)."""
        return 0 if self.partial else len(self.keys) + self.split_rows

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def of_items(cls, items: Sequence[Mapping[str, Any]], key: str = "id") -> PageRecords:
        """Records given as parsed objects (tests, callers holding dicts)."""
        return page_records(Page(list(items), "", None, {}), key)  # type: ignore[arg-type]

    def decode(self) -> list[dict[str, Any]]:
        """The records as Python objects."""
        return decode_records(self.json)


@functools.cache
def _keys_decoder(key: str) -> msgspec.json.Decoder[Any]:
    names = [key] if key == WATERMARK_FIELD else [key, WATERMARK_FIELD]
    head = msgspec.defstruct("KeyAndWatermark", [(name, Any, None) for name in names])
    return msgspec.json.Decoder(list[head])  # type: ignore[valid-type]


def _missing_key(key: str, page_url: str) -> ValueError:
    where = f" on page {page_url}" if page_url else ""
    return ValueError(f"a record{where} has no {key!r}: cannot upsert it")


def page_records(page: Page, key: str = "id") -> PageRecords:
    """Read the keys and the newest ``updated_at`` of a page's records, leaving the records as text.

    :raises ValueError: a record is not a JSON object or has no key.
    """
    text = page.records_json
    try:
        heads = _keys_decoder(key).decode(text)
        pairs: Iterable[tuple[Any, Any]] = ((getattr(h, key), getattr(h, WATERMARK_FIELD)) for h in heads)
    except msgspec.ValidationError as exc:
        raise ValueError(
            f"page {page.url or '(given records)'}: every record must be a JSON object ({exc})"
        ) from exc
    except msgspec.DecodeError:  # values msgspec cannot read (NaN...): the standard library parses the page
        items = decode_records(text)
        if not all(isinstance(item, dict) for item in items):
            raise ValueError(f"page {page.url}: every record must be a JSON object") from None
        pairs = ((item.get(key), item.get(WATERMARK_FIELD)) for item in items)
    keys: list[str] = []
    newest: str | None = None
    for value, updated in pairs:
        if value is None or value == "":
            raise _missing_key(key, page.url)
        keys.append(str(value))
        if isinstance(updated, str) and (newest is None or updated > newest):
            newest = updated
    if not text.isascii():  # RFC 8259: JSON between systems is UTF-8 (checked here, kept as bytes)
        try:
            text.decode()
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"page {page.url or '(given records)'}: the records are not UTF-8 JSON ({exc})"
            ) from exc
    return PageRecords(bytes(text), tuple(keys), newest, page.url, page.next_url)


_RAW_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])


def raw_records(text: bytes) -> list[msgspec.Raw]:
    """Each record of a JSON array text as its own bytes, unparsed (msgspec only finds where each ends).

    :raises msgspec.DecodeError: values msgspec cannot read (NaN...).
    """
    return _RAW_RECORDS.decode(text)


def _newest_of(text: bytes) -> str | None:
    try:
        values = [getattr(r, WATERMARK_FIELD) for r in _keys_decoder(WATERMARK_FIELD).decode(text)]
    except msgspec.DecodeError:
        values = [r.get(WATERMARK_FIELD) for r in decode_records(text)]
    return max((v for v in values if isinstance(v, str)), default=None)


def split_records(records: PageRecords, at: int) -> tuple[PageRecords, PageRecords]:
    """The first ``at`` records of a page and the rest, as two :class:`PageRecords`.

    The head resumes from the page's own URL (its ``next_url`` is ``url``: a load that commits the head and
    fails refetches the whole page); the tail carries the page's cursor and counts the head's records. A
    refetched page's parts both stay ``refetched``: either may hold records committed before.

    :raises ValueError: ``at`` is not strictly inside the page.
    """
    if not 0 < at < len(records):
        raise ValueError(f"cannot split a page of {len(records)} records at {at}")
    try:
        parts = raw_records(records.json)
        head_json, tail_json = encode_records(parts[:at]), encode_records(parts[at:])
    except msgspec.DecodeError:  # values msgspec cannot read (NaN...): the standard library splits the page
        items = decode_records(records.json)
        head_json, tail_json = encode_records(items[:at]), encode_records(items[at:])
    head = replace(
        records,
        json=head_json,
        keys=records.keys[:at],
        newest=_newest_of(head_json),
        next_url=records.url,
        partial=True,
        split_rows=0,
    )
    tail = replace(
        records,
        json=tail_json,
        keys=records.keys[at:],
        newest=_newest_of(tail_json),
        split_rows=records.split_rows + at,
    )
    return head, tail


def records_of(pages: Iterator[Page], key: str = "id", *, reopened: bool = False) -> Iterator[PageRecords]:
    """:func:`page_records` of every page (closing ``pages`` when closed).

    :param reopened: the pages continue a cursor at a saved checkpoint: the first is marked ``refetched``.
    """
    try:
        for page in pages:
            records = page_records(page, key)
            yield replace(records, refetched=True) if reopened else records
            reopened = False
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def dedupe_by_key(items: Iterable[Mapping[str, Any]], key: str = "id") -> list[Mapping[str, Any]]:
    """The records with the last one kept per key (one statement cannot upsert a key twice).

    :raises ValueError: a record without the key.
    """
    out: dict[str, Mapping[str, Any]] = {}
    for item in items:
        value = item.get(key) if isinstance(item, Mapping) else None
        if value in (None, ""):
            raise ValueError(f"a record has no {key!r}: cannot upsert it (keys: {sorted(item)[:10]})")
        out[str(value)] = item
    return list(out.values())


def unique_records(chunks: Sequence[PageRecords], key: str = "id") -> tuple[list[bytes], list[str]]:
    """The JSON texts and keys of ``chunks`` with each key once (the last record kept).

    Keys are almost always unique within a write batch: then the texts are returned as they are; otherwise
    the records are decoded, deduplicated and encoded again as one text.
    """
    keys = [k for chunk in chunks for k in chunk.keys]
    if len(set(keys)) == len(keys):
        return [chunk.json for chunk in chunks], keys
    records = dedupe_by_key((r for chunk in chunks for r in chunk.decode()), key)
    return [encode_records(records)], [str(r[key]) for r in records]
