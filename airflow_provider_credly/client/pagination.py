"""Pagination, once: page iterators over "next URL" style APIs.

Credly's page-number lists and its high-volume cursor both return ``metadata.next_page_url``;
Canvas Credentials returns a ``Link: <...>; rel="next"`` header. Either way the next URL is followed
verbatim (after checking it stays on the API's host), so callers never build page URLs themselves.

A page is never guessed: a body that is not the complete envelope (cut short, HTML, ``{}``) raises
:class:`MalformedResponseError` (the HTTP core retries it first), and a walk ends only where the server says
so (``next_page_url: null``; no ``rel="next"`` link).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from airflow_provider_credly.client.errors import ApiError, MalformedResponseError
from airflow_provider_credly.client.http import ApiResponse, HttpClient, json_object, malformed_response
from airflow_provider_credly.client.records_json import decode_records, encode_records

__all__ = [
    "Page",
    "PageParser",
    "credly_page",
    "credly_resource",
    "iter_items",
    "iter_pages",
]


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
    """Credly's list envelope with the records left as text (``b""``/``UNSET``: the member is missing)."""

    data: msgspec.Raw = msgspec.Raw(b"")
    metadata: Any = msgspec.UNSET


_envelope = msgspec.json.Decoder(_Envelope)


def _credly_cursor(resp: ApiResponse, metadata: Any) -> str | None:
    """``metadata.next_page_url``, required: the reference sends it on every list, ``null`` on the last page."""
    if not isinstance(metadata, dict):
        raise malformed_response(resp, "expected a metadata object in the list's envelope")
    if "next_page_url" not in metadata:
        raise malformed_response(resp, "the list's metadata has no next_page_url: its end is not known")
    next_url = metadata["next_page_url"]
    if next_url is None:
        return None
    if not isinstance(next_url, str) or not next_url.strip():
        raise malformed_response(resp, "the list's next_page_url is neither null nor a URL")
    return next_url


def credly_page(resp: ApiResponse) -> Page:
    """A Credly list response as a page: ``data`` kept as JSON text (parsed when :attr:`Page.items` is
    first read), ``metadata.next_page_url`` as the next URL.

    :raises MalformedResponseError: the body is not a complete JSON object with a ``data`` array and a
        ``metadata`` object holding ``next_page_url`` (msgspec decodes the whole document, so a body cut
        short fails here instead of passing for an empty last page).
    """
    try:
        body = _envelope.decode(resp.content)
    except msgspec.ValidationError:  # valid JSON of another shape (an array, a string...)
        json_object(resp)  # raises, saying what the body is
        raise malformed_response(resp, "expected Credly's list envelope") from None
    except msgspec.DecodeError:  # invalid JSON, or values msgspec does not read (NaN): the stdlib decides
        return _credly_page_slow(resp)
    records = bytes(body.data).strip()
    if not records.startswith(b"["):
        what = "no data member" if not records else "data that is not an array"
        raise malformed_response(resp, f"expected a data array in the list's envelope, got {what}")
    next_url = _credly_cursor(resp, body.metadata)
    return Page(None, resp.url, next_url, body.metadata, records_json=records)


def _credly_page_slow(resp: ApiResponse) -> Page:
    body = json_object(resp)  # raises MalformedResponseError when the document is cut short or not JSON
    data = body.get("data")
    if not isinstance(data, list):
        raise malformed_response(resp, "expected a data array in the list's envelope")
    return Page(data, resp.url, _credly_cursor(resp, body.get("metadata")), body["metadata"])


def credly_resource(resp: ApiResponse) -> dict[str, Any]:
    """The ``data`` object of a Credly single-resource response (``{"data": {...}, "metadata": ...}``).

    :raises MalformedResponseError: the body is not a JSON object whose ``data`` is an object.
    """
    data = json_object(resp).get("data")
    if not isinstance(data, dict):
        raise malformed_response(resp, "expected a data object in the response's envelope")
    return data


def _numbered(parse: PageParser, number: int) -> PageParser:
    """``parse`` with the page's number in the walk added to its :class:`MalformedResponseError`."""

    def parse_numbered(resp: ApiResponse) -> Page:
        try:
            return parse(resp)
        except MalformedResponseError as exc:
            raise MalformedResponseError(exc.message, status=exc.status, path=exc.path, page=number) from None

    return parse_numbered


def iter_pages(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    start_url: str | None = None,
    parse: PageParser = credly_page,
) -> Iterator[Page]:
    """Yield pages until the server says there is no next page.

    Each response goes through ``parse`` inside the HTTP core's retry loop: a malformed body is retried
    like a dropped connection, then raised as :class:`MalformedResponseError` naming the page's number.

    :param client: the HTTP client.
    :param path: the list endpoint's path (used for the first request).
    :param params: query parameters of the first request (the next URLs carry their own).
    :param start_url: resume from this URL (a :attr:`Page.next_url` saved earlier) instead of ``path``.
    :param parse: splits a response into items, next URL and metadata.
    """
    url: str = start_url or path
    query = None if start_url else params
    number = 0
    while True:
        number += 1
        page = client.request("GET", url, params=query, parse=_numbered(parse, number))
        yield page
        next_url = page.next_url
        if not next_url:  # the parsers return None only where the server said "last page"
            return
        if next_url in (url, page.url):
            raise ApiError(
                "the server returned the page's own URL as its next page URL", path=urlsplit(page.url).path
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
