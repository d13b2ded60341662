"""Record JSON: one decoder and one encoder for every page and row."""

from __future__ import annotations

import json

import pytest

from airflow_provider_credly.client.records_json import decode_records, encode_records


def test_records_round_trip_values_msgspec_does_not_know():
    # beyond 64-bit integers and NaN go through the standard library instead of failing
    assert decode_records(b"[1e999, 123456789012345678901234567890]")[1] == 123456789012345678901234567890
    assert decode_records(b'[{"x": NaN}]')[0]["x"] != 0
    with pytest.raises(ValueError, match="JSON array"):
        decode_records(b'{"id": 1}')
    assert json.loads(encode_records([{"when": object.__new__(type("T", (), {}))}]))[0]["when"]


def test_records_are_compact_and_keep_non_ascii():
    text = encode_records([{"name": "Zoë", "n": 1}])
    assert text == '[{"name":"Zoë","n":1}]'.encode()
    assert decode_records(text.decode()) == [{"name": "Zoë", "n": 1}]  # text or bytes
    with pytest.raises(ValueError):
        decode_records(b"[{")
