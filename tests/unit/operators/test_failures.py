"""The failure semantics: errors a retry cannot fix become AirflowFailException (and keep their type)."""

from __future__ import annotations

import pickle

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_credly.client.errors import (
    ApiConnectionError,
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from airflow_provider_credly.issuing.bulk import InvalidRowsError
from airflow_provider_credly.operators.failures import FailFastMixin, as_permanent, fail_fast, is_permanent


@pytest.mark.parametrize(
    "exc",
    [
        AuthenticationError("bad token", status=401, method="GET", path="/v1/x"),
        AuthenticationError("no permission", status=403),
        ValidationError("invalid", status=422, errors=[{"attribute": "email", "messages": ["bad"]}]),
        NotFoundError("gone", status=404),
        ValueError("badge_template_id is required"),
    ],
)
def test_permanent_errors(exc):
    assert is_permanent(exc)
    out = as_permanent(exc)
    assert isinstance(out, AirflowFailException)
    assert isinstance(out, type(exc))  # ``except ValidationError`` still catches it
    assert str(out) == str(exc)
    assert all(getattr(out, k) == v for k, v in exc.__dict__.items())
    again = pickle.loads(pickle.dumps(out))
    assert isinstance(again, AirflowFailException) and isinstance(again, type(exc))
    assert str(again) == str(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ServerError("boom", status=503),
        RateLimitError("slow down", status=429),
        ApiConnectionError("refused"),
        MalformedResponseError("truncated", status=200),
        RuntimeError("database is locked"),
        AirflowException("3 of 10 badges failed"),
        AirflowFailException("already final"),
    ],
)
def test_transient_errors_stay_retryable(exc):
    assert not is_permanent(exc)


def test_invalid_rows_are_permanent():
    assert is_permanent(InvalidRowsError.__new__(InvalidRowsError))


class _Op(FailFastMixin):
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def execute(self, context):
        if self.exc is not None:
            raise self.exc
        return "ok"

    def execute_complete(self, context, event=None):
        raise ValidationError("bad event", status=400)


def test_the_mixin_wraps_execute_and_execute_complete_of_subclasses():
    assert _Op(None).execute({}) == "ok"
    with pytest.raises(AirflowFailException, match="401 GET /x: nope") as info:
        _Op(AuthenticationError("nope", status=401, method="GET", path="/x")).execute({})
    assert isinstance(info.value.__cause__, AuthenticationError)
    with pytest.raises(ServerError):  # raised unchanged: Airflow retries it
        _Op(ServerError("boom", status=500)).execute({})
    with pytest.raises(AirflowFailException):
        _Op(None).execute_complete({})


def test_fail_fast_wraps_once():
    wrapped = fail_fast(_Op.execute)
    assert fail_fast(wrapped) is wrapped
