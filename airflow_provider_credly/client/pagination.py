"""Pagination, once: page iterators over "next URL" style APIs.

Credly's page-number lists and its high-volume cursor both return ``metadata.next_page_url``;
Canvas Credentials returns a ``Link: <...>; rel="next"`` header. Either way the next URL is followed
verbatim (after checking it stays on the API's host), so callers never build page URLs themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from airflow_provider_credly.client.errors import ApiError
from airflow_provider_credly.client.http import ApiResponse, HttpClient

__all__ = [
    "Page",
    "PageParser",
    "credly_page",
    "decode_records",
    "encode_records",
    "iter_items",
    "iter_pages",
]

_encoder = msgspec.json.Encoder()


def decode_records(text: bytes | str) -> list[dict[str, Any]]:
    """The records of a JSON array text (msgspec: about twice as fast as ``json.loads``)."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:  # e.g. an integer beyond 64 bits or NaN: the standard library decides
        value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array of records, got {type(value).__name__}")
    return value


def encode_records(items: Any) -> bytes:
    """Compact JSON text of ``items`` (non-ASCII kept as is)."""
    try:
        return _encoder.encode(items)
    except (TypeError, msgspec.EncodeError):  # a type msgspec does not know: the standard library decides
        return json.dumps(items, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class Page:
    """One page of results.

    A page is built either from parsed ``items`` or from ``records_json``, the page's records as one JSON
    array text exactly as the server sent it; then :attr:`items` is parsed on first use only, so a bulk
    loader that hands :attr:`records_json` to its database never builds the Python objects.

    :ivar url: the absolute URL that returned this page; re-requesting it gives the same page of a cursor.
    :ivar next_url: the URL of the next page, ``None`` on the last page. Persist it to resume later.
    :ivar metadata: the page's metadata (counts for page-number lists).
    """

    __slots__ = ("_items", "_records_json", "metadata", "next_url", "url")

    def __init__(
        self,
        items: list[dict[str, Any]] | None,
        url: str,
        next_url: str | None,
        metadata: Mapping[str, Any],
        *,
        records_json: bytes | None = None,
    ) -> None:
        if items is None and records_json is None:
            raise ValueError("a Page needs items or records_json")
        self._items = items
        self._records_json = records_json
        self.url = url
        self.next_url = next_url
        self.metadata = metadata

    @property
    def items(self) -> list[dict[str, Any]]:
        """The page's records (parsed on first use when the page was built from ``records_json``)."""
        if self._items is None:
            self._items = decode_records(self._records_json or b"[]")
        return self._items

    @property
    def records_json(self) -> bytes:
        """The page's records as one JSON array text (encoded on first use when built from ``items``)."""
        if self._records_json is None:
            self._records_json = encode_records(self._items)
        return self._records_json

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Page(url={self.url!r}, next_url={self.next_url!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (self.items, self.url, self.next_url, dict(self.metadata)) == (
            other.items,
            other.url,
            other.next_url,
            dict(other.metadata),
        )

    __hash__ = None  # type: ignore[assignment]


PageParser = Callable[[ApiResponse], Page]


class _Envelope(msgspec.Struct):
    """Credly's list envelope with the records left as text."""

    data: msgspec.Raw = msgspec.Raw(b"null")
    metadata: Any = None


_envelope = msgspec.json.Decoder(_Envelope)


def credly_page(resp: ApiResponse) -> Page:
    """A Credly list response as a page: ``data`` kept as JSON text (parsed when :attr:`Page.items` is
    first read), ``metadata.next_page_url`` as the next URL."""
    try:
        body = _envelope.decode(resp.content)
    except msgspec.DecodeError:  # not a JSON object: no records and no next page, as an empty body
        body = _Envelope()
    records = bytes(body.data).strip() or b"null"
    if records == b"null":
        records = b"[]"
    elif not records.startswith(b"["):
        raise ApiError(
            "expected a list in the response's data", status=resp.status, path=urlsplit(resp.url).path
        )
    metadata = body.metadata if isinstance(body.metadata, dict) else {}
    next_url = metadata.get("next_page_url")
    return Page(None, resp.url, str(next_url) if next_url else None, metadata, records_json=records)


def iter_pages(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    start_url: str | None = None,
    parse: PageParser = credly_page,
) -> Iterator[Page]:
    """Yield pages until the server gives no next URL.

    :param client: the HTTP client.
    :param path: the list endpoint's path (used for the first request).
    :param params: query parameters of the first request (the next URLs carry their own).
    :param start_url: resume from this URL (a :attr:`Page.next_url` saved earlier) instead of ``path``.
    :param parse: splits a response into items, next URL and metadata.
    """
    url: str = start_url or path
    query = None if start_url else params
    while True:
        resp = client.request("GET", url, params=query)
        page = parse(resp)
        yield page
        next_url = page.next_url
        if not next_url:
            return
        if next_url in (url, resp.url):
            raise ApiError(
                "the server returned the page's own URL as its next page URL", path=urlsplit(resp.url).path
            )
        client.url_for(next_url)  # refuse a foreign host before anything is sent
        url, query = next_url, None


def iter_items(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    parse: PageParser = credly_page,
) -> Iterator[dict[str, Any]]:
    """Yield every record of every page (see :func:`iter_pages`)."""
    for page in iter_pages(client, path, params, parse=parse):
        yield from page.items
