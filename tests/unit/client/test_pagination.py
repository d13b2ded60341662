"""Page parsing: Credly's envelope split without parsing the records, lazy items, JSON text round trips."""

from __future__ import annotations

import json

import pytest

from airflow_provider_credly.client.errors import MalformedResponseError
from airflow_provider_credly.client.http import ApiResponse
from airflow_provider_credly.client.pagination import Page, credly_page

URL = "https://api.credly.test/v1/organizations/o/badges"


def _resp(body: bytes) -> ApiResponse:
    return ApiResponse(200, URL, {}, body)


def test_credly_page_keeps_the_records_as_sent_and_parses_them_on_first_use():
    body = (
        b'{"data": [ {"id": "1", "name": "\xc3\xa9"},\n {"id": "2"} ], "metadata": {"next_page_url": "u2"}}'
    )
    page = credly_page(_resp(body))
    assert page.next_url == "u2"
    assert page.metadata == {"next_page_url": "u2"}
    assert page.records_json == b'[ {"id": "1", "name": "\xc3\xa9"},\n {"id": "2"} ]'
    assert page.items == [{"id": "1", "name": "é"}, {"id": "2"}]


def test_credly_page_with_no_records_and_a_null_cursor_is_an_empty_last_page():
    page = credly_page(_resp(b'{"data": [], "metadata": {"next_page_url": null}}'))
    assert page.items == []
    assert page.records_json == b"[]"
    assert page.next_url is None


@pytest.mark.parametrize(
    "body",
    [b'{"data": null, "metadata": null}', b'{"metadata": {}}', b"", b"[1, 2]", b'{"data": []}'],
)
def test_credly_page_without_the_whole_envelope_is_malformed_not_an_empty_last_page(body):
    # The old rule read these as an empty last page: a walk then ended early and lost the rest.
    with pytest.raises(MalformedResponseError):
        credly_page(_resp(body))


def test_credly_page_with_data_that_is_not_a_list_is_an_error():
    with pytest.raises(MalformedResponseError, match="data array"):
        credly_page(_resp(b'{"data": {"message": "x"}, "metadata": {"next_page_url": null}}'))


def test_page_built_from_items_encodes_them_once_as_compact_json():
    items = [{"id": "1", "name": "é", "n": 1.5, "ok": True, "none": None}]
    page = Page(items, "u", None, {})
    assert json.loads(page.records_json) == items
    assert "é".encode() in page.records_json  # not \\u escaped
    assert page.records_json is page.records_json  # cached
    assert page == Page(None, "u", None, {}, records_json=page.records_json)
    with pytest.raises(ValueError, match="needs items or records_json"):
        Page(None, "u", None, {})
