"""Shared plumbing of the Credly operators: the connection and lazily built hook, the run date, the try
number, and template fields rendered to strings converted back to lists, flags and numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator

from airflow_provider_credly.hooks.credly import CredlyHook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CredlyBaseOperator", "as_list", "run_date", "try_number"]


def run_date(context: Context | Mapping[str, Any]) -> datetime:
    """The run's logical date; ``data_interval_end`` or now when it has none (manual runs in Airflow 3)."""
    for key in ("logical_date", "data_interval_end"):
        value = context.get(key)
        if value is not None:
            return cast(datetime, value)
    return datetime.now(timezone.utc)


def try_number(context: Context | Mapping[str, Any]) -> int:
    """The task instance's try number (1 outside a task run)."""
    ti = context.get("ti")
    return int(getattr(ti, "try_number", None) or 1)


def as_list(value: Any, what: str) -> list[Any]:
    """A templated list argument: a list, a JSON string of a list, or one scalar."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{what} is not valid JSON: {exc}") from None
        else:
            return [text] if text else []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise ValueError(f"{what} must be a list, got {type(value).__name__}")


_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off", "")


def _coerce(value: Any, kind: str, name: str) -> Any:
    """A rendered template value (a string) back to ``kind`` (``flag``, ``int``, ``float``); ``None`` stays."""
    if value is None or (kind == "flag" and isinstance(value, bool)):
        return value
    try:
        if kind == "flag":
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        return float(value) if value != "" else None
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be {'true or false' if kind == 'flag' else 'a number'}, got {value!r}"
        ) from None


class CredlyBaseOperator(BaseOperator):
    """Shared plumbing: the connection id, a lazily built hook and typed template fields."""

    #: attribute name -> ``flag``/``int``/``float``: templated, converted back before use.
    typed_fields: dict[str, str] = {}

    def __init__(self, *, credly_conn_id: str = CredlyHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.credly_conn_id = credly_conn_id

    def coerce_typed_fields(self) -> None:
        """Convert rendered string values of :attr:`typed_fields` (``"{{ params.x }}"``) to their types."""
        for name, kind in self.typed_fields.items():
            setattr(self, name, _coerce(getattr(self, name), kind, name))

    @cached_property
    def hook(self) -> CredlyHook:
        """The Credly hook (built on first use, never in the constructor)."""
        return CredlyHook(self.credly_conn_id, pool_size=max(16, int(getattr(self, "workers", 0) or 0)))
