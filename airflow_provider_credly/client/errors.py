"""Typed errors raised by the HTTP core (Credly and Canvas Credentials alike).

Every error carries the HTTP ``status``, ``method`` and ``path`` (never the query string, which may hold
personal data, and never a credential), and the server's message when it sent one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "UNKNOWN_OUTCOME_ERRORS",
    "ApiConnectionError",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "MalformedResponseError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "UnsafeUrlError",
    "ValidationError",
]


class ApiError(Exception):
    """Base class of every error raised by the API clients of this package.

    :param message: human readable message (the server's where it sent one).
    :param status: HTTP status, or ``None`` when no response was received.
    :param method: HTTP method of the failed request.
    :param path: URL path of the failed request (no query string, no host credentials).
    :param body: parsed JSON body of the error response, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        body: Any = None,
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.method} {self.path}".strip()
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{where}: {self.message}" if where else f"{prefix}{self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (Airflow ships exceptions across processes) with their keyword arguments.
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[ApiError], message: str, state: dict[str, Any]) -> ApiError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    err.args = (err._format(),)
    return err


class ApiConnectionError(ApiError):
    """No usable response: connection refused or dropped, or a timeout, after all retries."""


class UnsafeUrlError(ApiError, ValueError):
    """A URL handed back by the server points to another scheme or host than the configured API.

    Following it would send the credential elsewhere, so it is refused.
    """


class AuthenticationError(ApiError):
    """401 or 403: the token is missing, wrong, expired or lacks the permission."""


class NotFoundError(ApiError):
    """404: the resource does not exist (Canvas Credentials also answers 404 for "no permission")."""


class BadRequestError(ApiError):
    """Any other 4xx the server rejected without a more specific meaning (e.g. 400 on a bad filter)."""


class ValidationError(BadRequestError):
    """The server rejected the request's content (Credly 422, Canvas Credentials 400).

    :ivar errors: the server's list of field errors (Credly: ``[{"attribute", "messages", ...}]``,
        Canvas Credentials: ``fieldErrors``/``validationErrors`` normalised to the same shape).
    :ivar metadata: the response's ``metadata`` object (Credly puts ``current_badge_id`` there).
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.errors = list(errors or [])
        self.metadata = dict(metadata or {})
        super().__init__(message, **kwargs)

    @property
    def current_badge_id(self) -> str | None:
        """The id of the current version of a replaced badge, when Credly reported it."""
        value = self.metadata.get("current_badge_id")
        return str(value) if value else None

    @property
    def messages(self) -> list[str]:
        """Every message of the error, the headline first, then each field error's messages."""
        out = [self.message] if self.message else []
        for err in self.errors:
            out.extend(str(m) for m in err.get("messages") or [])
        return out


class RateLimitError(ApiError):
    """429 after every retry was spent.

    :ivar retry_after: seconds the server asked to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(ApiError):
    """5xx after every retry was spent (or a non-retryable request that got a 5xx)."""


class MalformedResponseError(ApiError):
    """A 2xx response whose body is not the expected envelope: not JSON, cut short, or another shape.

    Never read as an empty (last) page: a safe request is retried like a dropped connection, and this
    error is raised once the retries are spent. For a ``POST`` the server acted but its answer is unusable,
    so the outcome is unknown, as after a lost connection (see :data:`UNKNOWN_OUTCOME_ERRORS`).

    :ivar page: the page's number in its walk (1 = the walk's first request), for a collection.
    :ivar attempts: how many responses were tried.
    """

    def __init__(self, message: str, *, page: int | None = None, attempts: int = 1, **kwargs: Any) -> None:
        self.page = page
        self.attempts = attempts
        super().__init__(message, **kwargs)

    def _format(self) -> str:
        text = super()._format()
        return f"{text} (page {self.page} of the walk)" if self.page is not None else text


UNKNOWN_OUTCOME_ERRORS: tuple[type[ApiError], ...] = (ServerError, ApiConnectionError, MalformedResponseError)
"""Errors after which a ``POST`` may or may not have taken effect (callers resolve them by looking up)."""
