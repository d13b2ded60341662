"""Failure semantics of every operator and transfer of this package, in one place: errors that a retry
cannot fix fail the task at once (as an :class:`AirflowFailException`, so Airflow spends no retry on
them, that is still an instance of the original error type);
transient ones (429, 5xx, dropped connections, malformed answers, database errors) stay retryable.

Permanent: 401/403 (:class:`AuthenticationError`), 404 (:class:`NotFoundError`: a missing resource, or on
Canvas Credentials a missing permission), other 4xx such as Credly's 422 or Canvas's 400 for invalid input
(:class:`BadRequestError`, :class:`ValidationError`), and ``ValueError`` raised while checking the arguments
before any request (invalid rows, filters, table names, a missing organization id...).

Many-item operators (bulk issue, revoke, delete) fail at once too when every item that failed met such an
error (:func:`all_permanent`): the same rows would fail again on a retry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_credly.client.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
)

__all__ = [
    "PERMANENT_ERRORS",
    "FailFastMixin",
    "all_permanent",
    "as_permanent",
    "fail_fast",
    "is_permanent",
]

PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    AuthenticationError,
    NotFoundError,
    BadRequestError,  # ValidationError (422/400) is one
    ValueError,  # argument and row validation before any HTTP (InvalidRowsError, PayloadError...)
)
"""Errors that the same task run again would meet again."""

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: the methods of a task that Airflow runs (``execute_complete`` after a deferral; a sensor's ``poke``, so
#: that ``silent_fail`` does not take a 401 for "not yet")
_TASK_METHODS = ("execute", "execute_complete", "poke")

#: original error type -> its "permanent" twin (a subclass of it and of ``AirflowFailException``)
_PERMANENT_TYPES: dict[type[BaseException], type[BaseException]] = {}


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot fix ``exc`` (see the module's description)."""
    return isinstance(exc, PERMANENT_ERRORS) and not isinstance(exc, AirflowFailException)


def all_permanent(errors: Iterable[BaseException | None]) -> bool:
    """Whether ``errors`` (the errors behind the failed items of a many-item task, ``None`` for a failure
    of unknown cause) hold at least one error and only errors a retry cannot fix; a single unknown or
    transient one (a 5xx, a timeout) keeps the task retryable."""
    seen = False
    for exc in errors:
        if exc is None or not is_permanent(exc):
            return False
        seen = True
    return seen


def as_permanent(exc: BaseException) -> AirflowFailException:
    """``exc`` as an :class:`AirflowFailException` that is still an instance of its own type, with the
    same message and attributes: Airflow does not retry it, and ``except ValueError`` (or
    ``except ValidationError``) around ``execute`` still catches it. Picklable when ``exc`` is."""
    cls = type(exc)
    twin = _PERMANENT_TYPES.get(cls)
    if twin is None:
        try:
            twin = type(
                f"Permanent{cls.__name__}",
                (cls, AirflowFailException),
                {"__module__": __name__, "__reduce__": _reduce_permanent},
            )
        except TypeError:  # a base layout that cannot be combined: a plain AirflowFailException then
            return AirflowFailException(str(exc))
        _PERMANENT_TYPES[cls] = twin
    out = cast(AirflowFailException, BaseException.__new__(twin))
    out.__dict__.update(exc.__dict__)
    out.args = exc.args
    out.original = exc  # type: ignore[attr-defined]
    return out


def _reduce_permanent(self: Any) -> tuple[Any, ...]:
    return (as_permanent, (self.original,))


def fail_fast(func: F) -> F:
    """Wrap a task method so that a permanent error is raised as :func:`as_permanent` of it (the
    original as its cause); anything else is raised unchanged."""
    if getattr(func, "_credly_fail_fast", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            # a task refused on its own input sent nothing and sends nothing after either
            if args and not isinstance(exc, (AirflowSkipException, ValueError)):
                _after_error(args[0])
            if not is_permanent(exc):
                raise
            # same message: every error of this package is free of credentials by construction
            raise as_permanent(exc) from exc

    wrapper._credly_fail_fast = True  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _after_error(task: Any) -> None:
    """Let ``task`` report what helps after its error (``after_error()``, e.g. a token about to expire);
    best effort: the task's own error is what it raises."""
    after = getattr(task, "after_error", None)
    if callable(after):
        try:
            after()
        except Exception as exc:  # the original error matters, not this one
            log.warning("After the task's error, %s failed too: %s", getattr(after, "__name__", after), exc)


class FailFastMixin:
    """Applies :func:`fail_fast` to ``execute``, ``execute_complete`` and ``poke`` of every subclass that
    defines them, so no operator or sensor of the package can forget it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _TASK_METHODS:
            method = cls.__dict__.get(name)
            if callable(method):
                setattr(cls, name, fail_fast(method))
