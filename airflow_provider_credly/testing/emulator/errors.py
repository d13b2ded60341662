"""Error payloads and the exact messages the emulator returns (one renderer for all handlers)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .util import humanize

MSG_BLANK = "can't be blank"
MSG_INVALID = "is invalid"
MSG_TAKEN = "has already been taken"
MSG_TEMPLATE_NOT_FOUND = "not found"
MSG_TEMPLATE_ARCHIVED = "An archived badge template cannot be used to issue new badges."
"""Attribute ``base`` (the reference: "an archived badge template cannot be used to issue new badges")."""
MSG_EXPIRES_BEFORE_ISSUED = "must be after issued at"
"""Attribute ``expires_at``: full message ``Validation failed: Expires at must be after issued at``."""
MSG_DUPLICATE_BADGE = "already has this badge"
"""Attribute ``user``: full message ``Validation failed: User already has this badge``."""
MSG_ALREADY_REPLACED = "This badge cannot be replaced because it has already been replaced."
MSG_REVOKE_REPLACED = "This badge cannot be revoked because it has been replaced."
MSG_ALREADY_REVOKED = "This badge has already been revoked."
MSG_DELETE_REPLACED = "You can not delete replaced badges. Delete the current version instead."
MSG_EMAIL_CHANGE_NOT_PENDING = "can only be changed on badges in the pending state"
MSG_LIST_TYPE = "must be email or external_id when employee_list is present"
MSG_STATUSES = "must be a list of: created, pending, rejected"
MSG_UNAUTHORIZED = "You are not authorized to access this resource. Check your authorization token."
MSG_FORBIDDEN = "Your authorization token does not have permission to perform this action."
MSG_NOT_FOUND = "The requested resource could not be found."


class EmulatorRefusal(Exception):
    """The emulator refusing a request: the error response it sends (status + JSON payload).

    Named apart from the client's :class:`~airflow_provider_credly.client.ApiError`, which is what the client
    raises on receiving it.
    """

    def __init__(self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None):
        super().__init__(f"{status}: {payload.get('data')}")
        self.status = status
        self.payload = payload
        self.headers = dict(headers or {})


def error_payload(message: str, **data: Any) -> dict[str, Any]:
    """``{"data": {"message": ...}, "metadata": {}}``."""
    return {"data": {"message": message, **data}, "metadata": {}}


def not_found(what: str = "") -> EmulatorRefusal:
    """404 error."""
    return EmulatorRefusal(404, error_payload(f"{MSG_NOT_FOUND} {what}".strip()))


def validation_error(
    errors: list[tuple[str, str]], metadata: dict[str, Any] | None = None
) -> EmulatorRefusal:
    """422 in Credly's Rails format, errors grouped by attribute."""
    grouped: dict[str, list[str]] = {}
    for attr, msg in errors:
        grouped.setdefault(attr, []).append(msg)
    full = [msg if attr == "base" else f"{humanize(attr)} {msg}" for attr, msg in errors]
    body = {
        "message": "Validation failed: " + ", ".join(full),
        "errors": [
            {"attribute": a, "attribute_label": humanize(a), "messages": msgs} for a, msgs in grouped.items()
        ],
    }
    return EmulatorRefusal(422, {"data": body, "metadata": metadata or {}})


_EVENT_COUNTERS = (
    "connections",
    "rate_limited",
    "dropped",
    "errors_injected",
    "errors_after",
    "badges_issued",
    "badges_replaced",
    "badges_revoked",
    "badges_deleted",
)


class Stats:
    """Thread-safe request/outcome counters; ``stats()`` and ``stats["key"]`` read the snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.requests_total = 0
        self.by_status: Counter[int] = Counter()
        self.by_route: Counter[tuple[str, str]] = Counter()
        self.events: Counter[str] = Counter()
        self.cursor_by_filter: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()

    def count_request(self, method: str, kind: str) -> None:
        """One request received."""
        with self._lock:
            self.requests_total += 1
            self.by_route[(method, kind)] += 1

    def started(self, kind: str) -> None:
        """A request of route ``kind`` is being served (its latency included): the most at once, by route,
        is ``peak_in_flight``."""
        with self._lock:
            self.in_flight[kind] += 1
            self.peak_in_flight[kind] = max(self.peak_in_flight[kind], self.in_flight[kind])

    def ended(self, kind: str) -> None:
        """The request :meth:`started` was answered (or dropped)."""
        with self._lock:
            self.in_flight[kind] -= 1

    def count_cursor(self, filter_text: str) -> None:
        """One high-volume cursor request served, by the cursor's filter (tells parallel slices apart)."""
        with self._lock:
            self.cursor_by_filter[filter_text] += 1

    def count_status(self, status: int) -> None:
        """One response sent."""
        with self._lock:
            self.by_status[status] += 1

    def incr(self, name: str) -> None:
        """Bump a named counter (``rate_limited``, ``dropped``, ``badges_issued``...)."""
        with self._lock:
            self.events[name] += 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-able copy of the counters (``errors`` and ``drops`` are totals over both phases)."""
        with self._lock:
            return {
                "requests_total": self.requests_total,
                "errors": self.events["errors_injected"] + self.events["errors_after"],
                "drops": self.events["dropped"],
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_route": {f"{m} {k}": v for (m, k), v in sorted(self.by_route.items())},
                "cursor_by_filter": dict(sorted(self.cursor_by_filter.items())),
                "peak_in_flight": dict(sorted(self.peak_in_flight.items())),
                **{k: self.events[k] for k in _EVENT_COUNTERS},
                **{k: v for k, v in self.events.items() if k not in _EVENT_COUNTERS},
            }

    def __call__(self) -> dict[str, Any]:
        """Same as ``snapshot()``."""
        return self.snapshot()

    def __getitem__(self, key: str) -> Any:
        """One value of the snapshot (``stats["rate_limited"]``)."""
        return self.snapshot()[key]
