"""Connection settings shared by both hooks: host and port as a URL, the HTTP extras."""

from __future__ import annotations

import pytest

from airflow_provider_credly.client import DEFAULT_BASE_URL
from airflow_provider_credly.hooks.connection import (
    base_url_from_connection,
    client_settings_from_extra,
    connection_url,
)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, DEFAULT_BASE_URL),
        ("", None, DEFAULT_BASE_URL),
        ("sandbox-api.credly.com", None, "https://sandbox-api.credly.com/v1"),
        ("https://sandbox-api.credly.com/v1/", None, "https://sandbox-api.credly.com/v1"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765/v1"),
        ("http://127.0.0.1:9000/v1", 1, "http://127.0.0.1:9000/v1"),
    ],
)
def test_base_url_from_connection(host, port, expected):
    assert base_url_from_connection(host, port, DEFAULT_BASE_URL) == expected


def test_settings_from_extra():
    settings = client_settings_from_extra({"timeout": "30", "max_retries": 0, "verify": "false"})
    assert settings["timeout"] == (10.0, 30.0)
    assert settings["retry"].max_attempts == 1
    assert settings["verify"] is False
    assert client_settings_from_extra({})["verify"] is True  # TLS verification stays on by default
    assert client_settings_from_extra({"verify": "/etc/ca.pem"})["verify"] == "/etc/ca.pem"
    with pytest.raises(ValueError, match="timeout"):
        client_settings_from_extra({"timeout": "fast"})


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, 8123, None),
        ("  ", None, None),
        ("api.ca.badgr.io", None, "https://api.ca.badgr.io"),
        (" http://127.0.0.1/ ", 8123, "http://127.0.0.1:8123"),
        ("http://127.0.0.1:9000/", 1, "http://127.0.0.1:9000"),
        ("badgr.example.edu/v2/", 443, "https://badgr.example.edu:443/v2"),
        ("http://[::1]/v1", 8765, "http://[::1]:8765/v1"),
    ],
)
def test_connection_url(host, port, expected):
    assert connection_url(host, port) == expected
