"""Pagination, once: page iterators over "next URL" style APIs.

Credly's page-number lists and its high-volume cursor both return ``metadata.next_page_url``;
Canvas Credentials returns a ``Link: <...>; rel="next"`` header. Either way the next URL is followed
verbatim (after checking it stays on the API's host), so callers never build page URLs themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_credly.client.errors import ApiError
from airflow_provider_credly.client.http import ApiResponse, HttpClient

__all__ = ["Page", "PageParser", "credly_page", "iter_items", "iter_pages"]


@dataclass(frozen=True)
class Page:
    """One page of results.

    :ivar items: the page's records.
    :ivar url: the absolute URL that returned this page; re-requesting it gives the same page of a cursor.
    :ivar next_url: the URL of the next page, ``None`` on the last page. Persist it to resume later.
    :ivar metadata: the page's metadata (counts for page-number lists).
    """

    items: list[dict[str, Any]]
    url: str
    next_url: str | None
    metadata: Mapping[str, Any]


PageParser = Callable[[ApiResponse], tuple[list[dict[str, Any]], str | None, Mapping[str, Any]]]


def credly_page(resp: ApiResponse) -> tuple[list[dict[str, Any]], str | None, Mapping[str, Any]]:
    """Split a Credly list response into items, next URL and metadata."""
    body = resp.data if isinstance(resp.data, dict) else {}
    items = body.get("data") or []
    if not isinstance(items, list):
        raise ApiError(
            "expected a list in the response's data", status=resp.status, path=urlsplit(resp.url).path
        )
    metadata = body.get("metadata") or {}
    next_url = metadata.get("next_page_url") if isinstance(metadata, dict) else None
    return items, (str(next_url) if next_url else None), metadata


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
        items, next_url, metadata = parse(resp)
        yield Page(items, resp.url, next_url, metadata)
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
