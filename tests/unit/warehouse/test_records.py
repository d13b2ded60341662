"""PageRecords: keys and watermark read from a page's JSON text without parsing the records."""

from __future__ import annotations

import json

import pytest

from airflow_provider_credly.client.pagination import Page
from airflow_provider_credly.warehouse.records import PageRecords, page_records, records_of, unique_records


def _page(text: str, url: str = "https://x/p1", next_url: str | None = "https://x/p2") -> Page:
    return Page(None, url, next_url, {}, records_json=text.encode())


def test_page_records_reads_keys_and_newest_updated_at_and_keeps_the_text():
    text = json.dumps(
        [
            {"id": "a", "updated_at": "2025-01-02T00:00:00Z", "big": {"x": [1, 2]}},
            {"id": 7, "updated_at": "2025-03-01T00:00:00Z"},
            {"id": "c", "updated_at": None},
        ]
    )
    rec = page_records(_page(text))
    assert rec.keys == ("a", "7", "c")
    assert rec.newest == "2025-03-01T00:00:00Z"
    assert rec.json == text.encode()  # the text as sent, UTF-8 bytes
    assert (rec.url, rec.next_url, len(rec)) == ("https://x/p1", "https://x/p2", 3)
    assert rec.decode()[0]["big"] == {"x": [1, 2]}


def test_a_page_beyond_latin1_stays_its_utf8_bytes():
    # one Polish name and an emoji would make a whole page's str 4 bytes per character: kept as sent
    body = json.dumps([{"id": "a", "issued_to": "Łukasz 😀"}, {"id": "b"}], ensure_ascii=False).encode()
    rec = page_records(Page(None, "https://x/p1", None, {}, records_json=body))
    assert type(rec.json) is bytes and rec.json == body
    assert rec.decode()[0]["issued_to"] == "Łukasz 😀"


@pytest.mark.parametrize("record", [{"name": "no id"}, {"id": None}, {"id": ""}])
def test_a_record_without_its_key_is_refused_naming_the_page(record):
    with pytest.raises(ValueError, match=r"a record on page https://x/p1 has no 'id'"):
        page_records(_page(json.dumps([{"id": "ok"}, record])))


def test_records_that_are_not_utf8_are_refused_naming_the_page():
    page = Page(
        None, "https://x/p9", None, {}, records_json='[{"id": "a", "n": "caf\xe9"}]'.encode("latin-1")
    )
    with pytest.raises(ValueError, match="https://x/p9"):
        page_records(page)


def test_records_that_are_not_objects_are_refused():
    with pytest.raises(ValueError, match="must be a JSON object"):
        page_records(_page('[{"id": "a"}, "b"]'))


def test_values_msgspec_cannot_read_fall_back_to_the_standard_library():
    rec = page_records(_page('[{"id": "a", "score": NaN, "updated_at": "2025"}]'))
    assert (rec.keys, rec.newest) == (("a",), "2025")
    with pytest.raises(ValueError, match="no 'id'"):
        page_records(_page('[{"score": NaN}]'))


def test_unique_records_keeps_texts_unless_a_key_repeats():
    one = PageRecords.of_items([{"id": "a", "v": 1}, {"id": "b", "v": 1}])
    two = PageRecords.of_items([{"id": "c", "v": 2}])
    texts, keys = unique_records([one, two])
    assert (texts, keys) == ([one.json, two.json], ["a", "b", "c"])
    again = PageRecords.of_items([{"id": "a", "v": 3}])
    texts, keys = unique_records([one, again])
    assert keys == ["a", "b"]
    assert json.loads(texts[0]) == [{"id": "a", "v": 3}, {"id": "b", "v": 1}]


def test_records_of_closes_the_page_iterator():
    closed = []

    def pages():
        try:
            yield _page('[{"id": "a"}]')
            yield _page('[{"id": "b"}]')
        finally:
            closed.append(True)

    stream = records_of(pages())
    assert next(stream).keys == ("a",)
    stream.close()
    assert closed == [True]


class _TextOnlyPage(Page):
    """A page whose records must never be parsed into Python objects."""

    @property
    def items(self):  # type: ignore[override]
        raise AssertionError("the transfer parsed a page's records in Python")


def test_a_transfer_into_duckdb_never_parses_records_in_python(tmp_path):
    import duckdb

    from airflow_provider_credly.warehouse import BADGES, DuckDBWriter, TableName, run_transfer

    records = [
        {"id": f"b{i}", "state": "accepted", "updated_at": f"2025-01-{1 + i % 28:02d}"} for i in range(120)
    ]

    def open_pages(start):
        first = int(start or 0)
        for i in range(first, len(records), 50):
            nxt = str(i + 50) if i + 50 < len(records) else None
            yield _TextOnlyPage(None, f"p{i}", nxt, {}, records_json=json.dumps(records[i : i + 50]).encode())

    writer = DuckDBWriter(duckdb.connect(str(tmp_path / "t.duckdb")), BADGES, TableName.parse("b"))
    result = run_transfer(open_pages=open_pages, writer=writer, key="k", fingerprint="f", unique_keys=True)
    assert (result.rows, writer.count(), result.max_updated_at) == (120, 120, "2025-01-28")
    writer.close()
