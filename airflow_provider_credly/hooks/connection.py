"""Connection settings, once: an Airflow connection's host, port and extra as the HTTP core's arguments.

Both hooks (Credly, Canvas Credentials) read their connection through these helpers, so a host written
without a scheme, a separate port field and the HTTP extras (timeouts, retries, TLS) mean the same thing
for both. Plain values in, plain values out: no connection look-up here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_credly.client import RetryPolicy

__all__ = ["base_url_from_connection", "client_settings_from_extra", "connection_url", "number_from_extra"]


def connection_url(host: str | None, port: int | None) -> str | None:
    """The connection's host as an absolute URL, or ``None`` when the host is empty.

    A host without a scheme gets ``https://``; the separate ``port`` field is applied when the host names
    no port; trailing slashes are dropped (the path is kept).

    :param host: the connection's host field (``api.credly.com``, ``http://127.0.0.1:8765/v1``...).
    :param port: the connection's port field.
    """
    if not host or not host.strip():
        return None
    text = host.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def base_url_from_connection(host: str | None, port: int | None, default: str) -> str:
    """The API base URL from a connection's host (``https://api.credly.com/v1``, ``sandbox-api.credly.com``,
    ``http://127.0.0.1:8765/v1``...) and port; an empty host means ``default``.

    As :func:`connection_url`; a host without a path gets ``default``'s path (``/v1``).

    :param host: the connection's host field.
    :param port: the connection's port field.
    :param default: the base URL of an empty host.
    """
    url = connection_url(host, port)
    if url is None:
        return default
    return url if urlsplit(url).path else url + urlsplit(default).path


def _number(extra: Mapping[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = extra.get(key)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {key!r} must be a number, got {value!r}") from None


def number_from_extra(extra: Mapping[str, Any], key: str, default: float) -> float:
    """A number setting of a connection's extra (``default`` when absent or empty).

    :raises ValueError: a value that is not a number.
    """
    value = _number(extra, key, float)
    return default if value is None else float(value)


def client_settings_from_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """HTTP settings (timeout, retry policy, TLS verification) from a connection's extra.

    Keys: ``timeout`` (read seconds, default 60), ``connect_timeout`` (default 10), ``max_retries``
    (retries after the first attempt, default 5), ``backoff_base`` (seconds, default 0.5),
    ``backoff_max`` (default 30), ``retry_total_timeout`` (default 600), ``verify`` (default true;
    ``false`` or a CA bundle path).

    :param extra: the connection's extra, parsed.
    :return: keyword arguments of :class:`~airflow_provider_credly.client.HttpClient`.
    :raises ValueError: a number that is not one.
    """
    read = _number(extra, "timeout", float) or 60.0
    connect = _number(extra, "connect_timeout", float) or 10.0
    retry_kwargs: dict[str, Any] = {}
    retries = _number(extra, "max_retries", int)
    if retries is not None:
        retry_kwargs["max_attempts"] = max(0, retries) + 1
    for key, field in (
        ("backoff_base", "backoff_base"),
        ("backoff_max", "backoff_max"),
        ("retry_total_timeout", "total_timeout"),
    ):
        value = _number(extra, key, float)
        if value is not None:
            retry_kwargs[field] = value
    verify: bool | str = True
    raw_verify = extra.get("verify", True)
    if isinstance(raw_verify, str) and raw_verify.strip().lower() in ("false", "0", "no"):
        verify = False
    elif isinstance(raw_verify, str) and raw_verify.strip().lower() not in ("true", "1", "yes", ""):
        verify = raw_verify
    elif raw_verify is False:
        verify = False
    return {"timeout": (connect, read), "retry": RetryPolicy(**retry_kwargs), "verify": verify}
