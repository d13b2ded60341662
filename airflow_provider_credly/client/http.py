"""The HTTP core: one ``requests`` session, auth, timeouts, retries and error mapping.

It knows nothing of Airflow, so it can be unit-tested and reused by every backend (Credly, Canvas
Credentials). Backends differ only in the pieces passed in: the auth object, the error parser and
which statuses mean "validation failed".
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, overload
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from airflow_provider_credly.client.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnsafeUrlError,
    ValidationError,
)
from airflow_provider_credly.client.retry import RetryPolicy, parse_retry_after

__all__ = [
    "ApiResponse",
    "ErrorDetails",
    "HttpClient",
    "ResponseObserver",
    "ResponseParser",
    "credly_error_details",
    "json_object",
    "malformed_response",
    "origin_text",
    "parse_json",
    "same_origin",
    "short_reason",
]

log = logging.getLogger(__name__)

USER_AGENT = "airflow-provider-credly"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REASON_CHARS = 200  # of a non-JSON error body kept in the error's message (a proxy's HTML page is long)

T = TypeVar("T")


def parse_json(content: bytes) -> Any:
    """The JSON value of a response body; ``None`` for an empty or non-JSON body."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


@dataclass(frozen=True)
class ApiResponse:
    """A successful response. Its JSON body is parsed on first use of :attr:`data`, so a caller that
    reads :attr:`content` itself (a page parser handing records to a bulk loader) never pays for it."""

    status: int
    url: str
    headers: Mapping[str, str]
    content: bytes = b""

    @cached_property
    def data(self) -> Any:
        """The parsed JSON body (``None`` for an empty or non-JSON body)."""
        return parse_json(self.content)


def malformed_response(resp: ApiResponse, reason: str) -> MalformedResponseError:
    """The error for a successful response whose body is unusable (no body text in it: it may hold data)."""
    return MalformedResponseError(reason, status=resp.status, path=urlsplit(resp.url).path)


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def json_object(resp: ApiResponse) -> dict[str, Any]:
    """The body of a successful response as a JSON object.

    :raises MalformedResponseError: the body is empty, not JSON (an HTML page), cut short, or not an object.
    """
    if isinstance(resp.data, dict):
        return resp.data
    size = len(resp.content)
    try:
        value = json.loads(resp.content) if resp.content.strip() else None
    except ValueError as exc:
        kind = resp.headers.get("Content-Type") or "no Content-Type"
        if isinstance(exc, json.JSONDecodeError) and (
            exc.pos >= len(resp.content.rstrip()) or exc.msg.startswith("Unterminated")
        ):
            why = f"the JSON document is cut short (it ends at byte {size} inside the document)"
        else:
            why = f"the body is not a JSON document ({kind}, {size} bytes)"
        raise malformed_response(resp, why) from None
    if value is None and not resp.content.strip():
        raise malformed_response(resp, "the body is empty")
    raise malformed_response(resp, f"expected a JSON object, got {_json_kind(value)}")


@dataclass(frozen=True)
class ErrorDetails:
    """What an error body says, in a backend-neutral form."""

    message: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


ErrorParser = Callable[[int, Any], ErrorDetails]

ResponseParser = Callable[[ApiResponse], T]
"""Turns a successful response into what the caller wants, or raises :class:`MalformedResponseError`."""

ResponseObserver = Callable[[int], None]
"""Called with the status of every HTTP response the client receives (see :meth:`HttpClient.observe`)."""

_MARKUP = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)


def short_reason(text: str, limit: int = REASON_CHARS) -> str:
    """The first ``limit`` characters of a body's text, markup removed and whitespace collapsed."""
    plain = " ".join(_MARKUP.sub(" ", text).split())
    return plain if len(plain) <= limit else plain[:limit].rstrip() + "..."


def credly_error_details(status: int, body: Any) -> ErrorDetails:
    """Read Credly's error envelope ``{"data": {"message", "errors"}, "metadata": {...}}``."""
    message = ""
    errors: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict):
            message = str(data.get("message") or "")
            raw_errors = data.get("errors")
            if isinstance(raw_errors, list):
                errors = [e for e in raw_errors if isinstance(e, dict)]
        elif isinstance(body.get("message"), str):
            message = body["message"]
        if isinstance(body.get("metadata"), dict):
            metadata = dict(body["metadata"])
    if not message and errors:
        message = "; ".join(str(m) for e in errors for m in e.get("messages") or [])
    return ErrorDetails(message or f"HTTP {status}", errors, metadata)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the same scheme, host and port as ``base_url``."""
    return _origin(url) == _origin(base_url)


def origin_text(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port always shown (the default one included)."""
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


def _was_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the server (so a POST might have taken effect)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        if isinstance(
            reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        ):
            return False
    return True


class HttpClient:
    """A JSON-over-HTTP client with retries, bound to one API base URL.

    Retries (see :class:`RetryPolicy`) cover 429, 500, 502, 503, 504, timeouts and connection errors.
    ``GET``, ``PUT`` and ``DELETE`` are retried in all those cases. A ``POST`` is retried only where the
    server cannot have acted on it: a 429 (rejected before processing) and a connection that could not
    be opened. A ``POST`` whose outcome is unknown (5xx, read timeout, dropped connection) is raised to
    the caller, because a retry could issue a second badge; callers that know a POST is safe to repeat
    (a token request, a create that the server de-duplicates) pass ``idempotent=True``.

    The credential lives only in ``auth``; it is sent only to URLs with the base URL's scheme, host and
    port (``UnsafeUrlError`` otherwise) and never appears in ``repr`` or error messages.

    :param base_url: API root, e.g. ``https://api.credly.com/v1``.
    :param auth: a ``requests`` auth object; it may define ``on_unauthorized() -> bool`` to refresh its
        credential once after a 401 (the request is then retried once).
    :param timeout: seconds, or ``(connect, read)`` seconds.
    :param retry: the retry policy (default :class:`RetryPolicy`).
    :param verify: TLS verification (``True``, or a CA bundle path). Keep it on outside tests.
    :param error_parser: turns an error body into :class:`ErrorDetails`.
    :param validation_statuses: statuses that mean "the content was invalid" (Credly: 422).
    :param pool_size: connections kept per host, for concurrent callers.
    :param sleep: injectable sleep, for tests.
    :param clock: injectable monotonic clock, for tests.
    :param rng: injectable random source for jitter, for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        error_parser: ErrorParser = credly_error_details,
        validation_statuses: frozenset[int] = frozenset({422}),
        pool_size: int = 16,
        user_agent: str = USER_AGENT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.error_parser = error_parser
        self.validation_statuses = validation_statuses
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        # Replaced, never mutated, under the lock: the request loop reads it without locking.
        self._observers: tuple[ResponseObserver, ...] = ()
        self._observers_lock = threading.Lock()
        self.session = session or requests.Session()
        self.session.verify = verify
        self._read_environment(verify)
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        # Our own retry loop decides what is safe to repeat; urllib3 must not retry behind its back.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _read_environment(self, verify: bool | str) -> None:
        # requests re-reads proxy settings from os.environ on every request (~60 us each, a sixth of a
        # cursor page's client time): every URL of this client is on base_url's origin, so read them once.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        if verify is True:  # as requests does with trust_env: a CA bundle named by the environment
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self.session.verify = bundle

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    @contextmanager
    def observe(self, observer: ResponseObserver) -> Iterator[None]:
        """Call ``observer(status)`` for every response received while the block runs, on the thread that
        sent the request: retried ones (a 429 before its retry, a 401 before the refresh) included.

        Thread-safe; observers may be nested or added from several threads. An exception raised by an
        observer propagates to the caller of :meth:`request`.

        :param observer: called with the HTTP status code; it must be quick (it runs inside the request).
        """
        with self._observers_lock:
            self._observers = (*self._observers, observer)
        try:
            yield
        finally:
            with self._observers_lock:
                observers = list(self._observers)
                observers.remove(observer)
                self._observers = tuple(observers)

    def url_for(self, path_or_url: str) -> str:
        """Absolute URL for an API path, or the given absolute URL once checked to be on the API's host."""
        if "://" in path_or_url:
            if not same_origin(path_or_url, self.base_url):
                raise UnsafeUrlError(
                    f"refusing to follow a URL on {origin_text(path_or_url)}: the API is at "
                    f"{origin_text(self.base_url)}",
                    path=urlsplit(path_or_url).path,
                )
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    @overload
    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json_body: Any = ...,
        form: Mapping[str, str] | None = ...,
        headers: Mapping[str, str] | None = ...,
        idempotent: bool | None = ...,
        auth: requests.auth.AuthBase | None = ...,
        parse: None = ...,
    ) -> ApiResponse: ...

    @overload
    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = ...,
        json_body: Any = ...,
        form: Mapping[str, str] | None = ...,
        headers: Mapping[str, str] | None = ...,
        idempotent: bool | None = ...,
        auth: requests.auth.AuthBase | None = ...,
        parse: ResponseParser[T],
    ) -> T: ...

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        auth: requests.auth.AuthBase | None = None,
        parse: ResponseParser[Any] | None = None,
    ) -> Any:
        """Send one request, with retries, and return the response (or what ``parse`` made of it) or raise
        an :class:`ApiError`.

        :param method: HTTP method.
        :param path_or_url: path under the base URL, or an absolute URL on the same host.
        :param params: query parameters (``None`` values are dropped).
        :param json_body: JSON request body.
        :param form: form-encoded request body (instead of ``json_body``).
        :param headers: extra headers.
        :param idempotent: whether repeating the request is harmless; defaults to ``True`` for
            GET/HEAD/OPTIONS/PUT/DELETE and ``False`` for POST/PATCH.
        :param auth: auth for this request instead of the client's (e.g. none for a token request).
        :param parse: reads a successful response (an envelope check, a page splitter). When it raises
            :class:`MalformedResponseError` (a body cut short, HTML, another shape) a safe request is retried
            as after a dropped connection and the error raised once the retries are spent; an unsafe one
            (the server acted) raises it at once.
        """
        method = method.upper()
        url = self.url_for(path_or_url)
        path = urlsplit(url).path
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        query = {k: v for k, v in (params or {}).items() if v is not None} or None
        use_auth = auth if auth is not None else self.auth
        started = self._clock()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=query,
                    json=json_body,
                    data=form,
                    headers=dict(headers) if headers else None,
                    auth=use_auth,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                retryable = safe or not _was_sent(exc)
                delay = self._next_delay(attempt, None, started) if retryable else None
                if delay is None:
                    raise ApiConnectionError(
                        f"{type(exc).__name__} after {attempt} attempt(s)"
                        + ("" if retryable else "; not retried because the request may have been applied"),
                        method=method,
                        path=path,
                    ) from exc
                log.warning(
                    "%s %s failed (%s); retrying in %.1f s (attempt %d/%d)",
                    method,
                    path,
                    type(exc).__name__,
                    delay,
                    attempt + 1,
                    self.retry.max_attempts,
                )
                self._sleep(delay)
                continue

            for observer in self._observers:
                observer(resp.status_code)
            if resp.status_code == 401 and not refreshed and _refreshable(use_auth):
                refreshed = True
                resp.close()
                log.info("%s %s returned 401; refreshing the credential and retrying once", method, path)
                continue
            if resp.status_code < 400:
                answer = ApiResponse(resp.status_code, resp.url, resp.headers, resp.content)
                if parse is None:
                    return answer
                try:
                    return parse(answer)
                except MalformedResponseError as exc:
                    delay = self._next_delay(attempt, None, started) if safe else None
                    if delay is None:
                        raise self._malformed(exc, method, path, attempt, safe) from exc
                    log.warning(
                        "%s %s returned %d with an unusable body (%s); retrying in %.1f s (attempt %d/%d)",
                        method,
                        path,
                        answer.status,
                        exc.message,
                        delay,
                        attempt + 1,
                        self.retry.max_attempts,
                    )
                    self._sleep(delay)
                    continue

            status = resp.status_code
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            retryable = status in self.retry.statuses and (safe or status == 429)
            delay = self._next_delay(attempt, retry_after, started) if retryable else None
            if delay is None:
                raise self._error(
                    method, path, status, parse_json(resp.content), resp.text, retry_after, resp.reason
                )
            resp.close()
            log.warning(
                "%s %s returned %d; retrying in %.1f s (attempt %d/%d)",
                method,
                path,
                status,
                delay,
                attempt + 1,
                self.retry.max_attempts,
            )
            self._sleep(delay)

    def _next_delay(self, attempt: int, retry_after: float | None, started: float) -> float | None:
        return self.retry.wait_for(
            attempt, retry_after=retry_after, elapsed=self._clock() - started, rng=self._rng
        )

    @staticmethod
    def _malformed(
        exc: MalformedResponseError, method: str, path: str, attempts: int, retried: bool
    ) -> MalformedResponseError:
        how = (
            f" after {attempts} attempt(s)"
            if retried
            else "; not retried because the server may have acted on the request"
        )
        return MalformedResponseError(
            exc.message + how, status=exc.status, method=method, path=path, page=exc.page, attempts=attempts
        )

    def _error(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        text: str,
        retry_after: float | None,
        reason: str | None = None,
    ) -> ApiError:
        details = self.error_parser(status, body)
        message = details.message
        if body is None and message == f"HTTP {status}":
            # The status line and the start of the text: a proxy's 502 page is not worth a screenful.
            status_line = f"HTTP {status} {reason}".rstrip() if reason else message
            short = short_reason(text or "")
            message = f"{status_line}: {short}" if short else status_line
        elif status >= 500 and len(message) > REASON_CHARS:
            message = message[:REASON_CHARS].rstrip() + "..."
        common: dict[str, Any] = {"status": status, "method": method, "path": path, "body": body}
        if status in self.validation_statuses:
            return ValidationError(message, errors=details.errors, metadata=details.metadata, **common)
        if status in (401, 403):
            return AuthenticationError(message, **common)
        if status == 404:
            return NotFoundError(message, **common)
        if status == 429:
            return RateLimitError(message, retry_after=retry_after, **common)
        if status >= 500:
            return ServerError(message, **common)
        return BadRequestError(message, **common)


def _refreshable(auth: object) -> bool:
    refresh = getattr(auth, "on_unauthorized", None)
    return bool(callable(refresh) and refresh())
