"""The Canvas Credentials emulator's HTTP server (stdlib only). Fault injection is the Credly emulator's
:class:`FaultInjector` (5xx, dropped connections, errors after the effect, 429, latency).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

from airflow_provider_credly.testing.canvas.state import CanvasApiError, CanvasState, odd_assertion
from airflow_provider_credly.testing.emulator.faults import FaultInjector, malformed_body
from airflow_provider_credly.testing.emulator.handler import JsonApiHandler

__all__ = ["CanvasEmulatorServer", "RunningCanvasEmulator", "run_canvas_emulator"]

_STATUS_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def envelope(
    result: list[dict[str, Any]] | None = None, *, description: str = "ok", success: bool = True
) -> dict[str, Any]:
    """The API v2 response envelope."""
    body: dict[str, Any] = {
        "status": {"success": success, "description": description},
        "timestamp": datetime.now(UTC).isoformat(),
    }
    if result is not None:
        body["result"] = result
    return body


def error_body(exc: CanvasApiError) -> dict[str, Any]:
    """The envelope of an error, or an OAuth2 error body for the token endpoint's ``invalid_grant``."""
    if exc.description in ("invalid_grant", "unsupported_grant_type"):
        return {"error": exc.description, "error_description": "Invalid credentials given."}
    body = envelope(description=exc.description, success=False)
    body.update(fieldErrors=exc.field_errors, validationErrors=exc.validation_errors, nonFieldErrors=[])
    return body


def _b64(text: str) -> str:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise CanvasApiError(404, "Not Found") from None


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[0].strip().lower() in ("true", "1", "yes")


def _include_staff(query: dict[str, list[str]]) -> bool:
    """The issuer endpoints' ``include_staff`` query parameter (default true)."""
    return (query.get("include_staff") or ["true"])[0].strip().lower() not in ("false", "0", "no")


def _is_issuer_path(rest: list[str]) -> bool:
    """``/v2/issuers``, ``/v2/issuers/{id}`` or ``/v2/issuers/{openBadgeId|ref}/{b64}``: answers issuers."""
    return len(rest) <= 1 or (len(rest) == 2 and rest[0] in ("openBadgeId", "ref"))


def _without_staff(payload: Any) -> Any:
    """An issuer envelope with each issuer's ``staff`` left out (``include_staff=false``)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
        return payload
    result = [{k: v for k, v in item.items() if k != "staff"} for item in payload["result"]]
    return {**payload, "result": result}


class CanvasEmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server holding a :class:`CanvasState` and a :class:`FaultInjector`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: CanvasState, faults: FaultInjector) -> None:
        self.state = state
        self.faults = faults
        super().__init__(address, _Handler)


class _Handler(JsonApiHandler):
    server_version = "CanvasCredentialsEmulator/1.0"
    server: CanvasEmulatorServer

    def _send(
        self, status: int, payload: Any, headers: dict[str, str] | None = None, malformed: str | None = None
    ) -> None:
        # UTF-8, not \\u escapes: Badgr (Django REST framework) sends non-ASCII characters as they are
        body = b"" if status == 204 else json.dumps(payload, ensure_ascii=False).encode()
        content_type = "application/json"
        if malformed and 200 <= status < 300 and status != 204:  # the fault: an unusable 2xx body
            with self.server.state.lock:
                self.server.state.stats["malformed_injected"] += 1
            body, content_type = malformed_body(malformed, body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with state.lock:
            state.stats[f"{method} {_kind(split.path)}"] += 1
        decision = self.server.faults.decide(method, split.path)
        if decision.action == "rate_limited":
            self._send(
                429,
                envelope(description="Too Many Requests", success=False),
                {"Retry-After": decision.retry_after or "1"},
            )
            return
        if decision.action == "error":
            with state.lock:
                state.stats["errors_injected"] += 1
            self._send(decision.status, envelope(description=_STATUS_TEXT[decision.status], success=False))
            return
        if decision.action == "drop":
            self.close_connection = True
            return
        try:
            status, payload, headers = self._route(method, split.path, split.query, raw)
        except CanvasApiError as exc:
            status, payload, headers = exc.status, error_body(exc), {}
        if decision.loses(status):
            with state.lock:
                state.stats["errors_after"] += 1
            if decision.after == "drop":
                self.close_connection = True
                return
            status, payload, headers = 500, envelope(description=_STATUS_TEXT[500], success=False), {}
        self._send(status, payload, headers, decision.malformed)

    # ------------------------------------------------------------------------------------------ routes

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise CanvasApiError(400, "Malformed JSON") from None
        if not isinstance(body, dict):
            raise CanvasApiError(400, "Expected a JSON object")
        return body

    def _route(self, method: str, path: str, query_text: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if path == "/o/token" and method == "POST":
            form = dict(parse_qsl(raw.decode()))
            return 200, state.grant(form), {}
        segs = [s for s in path.split("/") if s]
        if not segs or segs[0] != "v2":
            raise CanvasApiError(404, "Not Found")
        state.authenticate(self.headers.get("Authorization"))
        query = parse_qs(query_text)
        segs = segs[1:]
        if len(segs) == 3 and segs[0] in ("issuers", "badgeclasses") and segs[2] == "assertions":
            return self._assertions(method, segs[0], segs[1], query, raw)
        if segs[0] == "assertions" and len(segs) == 2:
            if method == "GET":
                return 200, envelope([_find_assertion(state, segs[1])]), {}
            if method == "DELETE":
                reason = self._json(raw).get("revocation_reason")
                return 200, envelope([state.revoke(segs[1], reason)]), {}
        if segs[0] == "issuers":
            status, payload, headers = self._issuers(method, segs[1:], raw)
            if _is_issuer_path(segs[1:]) and not _include_staff(query):
                payload = _without_staff(payload)
            return status, payload, headers
        raise CanvasApiError(404, "Not Found")

    def _issuers(self, method: str, rest: list[str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if not rest:
            if method == "GET":
                return 200, envelope(list(state.issuers.values())), {}
            if method == "POST":
                return 201, envelope([state.create_issuer(self._json(raw))]), {}
            raise CanvasApiError(405, "Method Not Allowed")
        if len(rest) == 2 and rest[0] in ("openBadgeId", "ref"):
            issuer = state.find_issuer(_b64(rest[1]), by="openBadgeId")
            return self._issuer(method, issuer, raw)
        issuer = state.find_issuer(rest[0])
        if len(rest) == 1:
            return self._issuer(method, issuer, raw)
        if rest[1] == "badgeclasses" and len(rest) == 2:
            if method == "GET":
                items = [b for b in state.badge_classes.values() if b["issuer"] == issuer["entityId"]]
                return 200, envelope(items), {}
            if method == "POST":
                return 201, envelope([state.create_badge_class(issuer["entityId"], self._json(raw))]), {}
        if rest[1] == "staff":
            return self._staff(method, issuer, rest[2:], raw)
        raise CanvasApiError(404, "Not Found")

    def _issuer(self, method: str, issuer: dict[str, Any], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if method == "GET":
            return 200, envelope([issuer]), {}
        if method in ("PUT", "PATCH"):
            body = self._json(raw)
            if method == "PUT":
                missing = [k for k in ("name", "email", "url", "description") if not body.get(k)]
                if missing:
                    raise CanvasApiError(
                        400, "Bad Request", field_errors={k: ["This field is required."] for k in missing}
                    )
            with state.lock:
                issuer.update({k: v for k, v in body.items() if k not in ("entityId", "openBadgeId")})
            return 200, envelope([issuer]), {}
        if method == "DELETE":
            with state.lock:
                state.issuers.pop(issuer["entityId"], None)
            return 204, None, {}
        raise CanvasApiError(405, "Method Not Allowed")

    def _staff(
        self, method: str, issuer: dict[str, Any], rest: list[str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        with state.lock:
            staff: list[dict[str, Any]] = issuer.setdefault("staff", [])
            if rest == ["invitations"] and method == "POST":
                body = self._json(raw)
                return (
                    200,
                    envelope([{"email": body.get("email"), "role": body.get("role"), "status": "PENDING"}]),
                    {},
                )
            if len(rest) == 1 and method == "DELETE":
                email = _b64(rest[0]).lower()
                kept = [m for m in staff if str(m.get("email", "")).lower() != email]
                if len(kept) == len(staff):
                    raise CanvasApiError(404, "Not Found")
                issuer["staff"] = kept
                return 204, None, {}
            if rest:
                raise CanvasApiError(404, "Not Found")
            body = self._json(raw)
            if body.get("role") not in ("owner", "editor", "staff"):
                raise CanvasApiError(400, "Bad Request", field_errors={"role": ["Invalid role."]})
            email = str(body.get("email") or "").lower()
            member = next((m for m in staff if str(m.get("email", "")).lower() == email), None)
            if method == "POST":
                if member is not None:
                    raise CanvasApiError(400, "Bad Request", validation_errors=["Already a staff member."])
                member = {"role": body["role"], "user": email, "email": email}
                staff.append(member)
                return 201, envelope([member]), {}
            if method in ("PUT", "PATCH"):
                if member is None:
                    raise CanvasApiError(404, "Not Found")
                member["role"] = body["role"]
                return 200, envelope([member]), {}
        raise CanvasApiError(405, "Method Not Allowed")

    def _assertions(
        self, method: str, scope: str, scope_id: str, query: dict[str, list[str]], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if method == "POST":
            return 201, envelope([state.create_assertion(scope, scope_id, self._json(raw))]), {}
        if method != "GET":
            raise CanvasApiError(405, "Method Not Allowed")
        try:
            num = int(query["num"][0]) if query.get("num") else None
            after = int(query["after"][0]) if query.get("after") else None
        except ValueError:
            raise CanvasApiError(
                400, "Bad Request", field_errors={"num": ["A valid integer is required."]}
            ) from None
        if num is not None and not 1 <= num <= 500:
            raise CanvasApiError(400, "Bad Request", field_errors={"num": ["Must be between 1 and 500."]})
        recipient = query["recipient"][0] if query.get("recipient") else None
        items, cursor = state.list_assertions(
            scope,
            scope_id,
            recipient=recipient,
            include_expired=_flag(query, "include_expired"),
            include_revoked=_flag(query, "include_revoked"),
            num=num,
            after=after,
        )
        odd = self.server.faults.odd_values
        if odd is not None:  # the fault: some assertions with odd-but-valid values (the state keeps its own)
            for i, item in enumerate(items):
                r = state.sequence(item["entityId"])
                if (kind := odd.kind(r)) is not None:
                    items[i] = odd_assertion(item, kind, r)
        headers: dict[str, str] = {}
        if cursor is not None:
            kept = [(k, v) for k, values in query.items() if k not in ("after", "before") for v in values]
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            url = f"http://{host}/v2/{scope}/{quote(scope_id)}/assertions?" + urlencode(
                [*kept, ("after", str(cursor))]
            )
            headers["Link"] = f'<{url}>; rel="next"'
        return 200, envelope(items), headers


def _find_assertion(state: CanvasState, eid: str) -> dict[str, Any]:
    with state.lock:
        item = state.assertions.get(eid)
    if item is None:
        raise CanvasApiError(404, "Not Found")
    return item


def _kind(path: str) -> str:
    if path == "/o/token":
        return "token"
    return "assertions" if "assertions" in path else path.split("/")[2] if path.count("/") >= 2 else path


@dataclass
class RunningCanvasEmulator:
    """A running emulator: its ``base_url`` (for the connection's host), credentials and state."""

    server: CanvasEmulatorServer
    base_url: str
    username: str
    password: str

    @property
    def state(self) -> CanvasState:
        """The data the emulator serves (inspect it in tests)."""
        return self.server.state

    def set_faults(self, **faults: Any) -> None:
        """Change the fault knobs (``error_rate``, ``error_after_rate``, ``drop_rate``, ``rate_limit``,
        ``latency_ms``, ``fail_paths``, ``error_after_mode``, ``malformed_rate``, ``malformed_mode``,
        ``seed``)."""
        self.server.faults.configure(**faults)

    def clear_faults(self) -> None:
        """No faults."""
        self.server.faults.clear()

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form) for this emulator, with fast retries by default."""
        return {
            "conn_type": "canvas_credentials",
            "host": self.base_url,
            "login": self.username,
            "password": self.password,
            "extra": {"backoff_base": 0.01, "backoff_max": 0.2, **extra},
        }


@contextmanager
def run_canvas_emulator(
    state: CanvasState | None = None, *, host: str = "127.0.0.1", port: int = 0, **faults: Any
) -> Iterator[RunningCanvasEmulator]:
    """Serve ``state`` (default: :meth:`CanvasState.seeded`) on ``host:port`` (0 = a free port) in a
    background thread for the duration of the ``with`` block.
    """
    state = state or CanvasState.seeded()
    server = CanvasEmulatorServer((host, port), state, FaultInjector(**{"seed": state.seed, **faults}))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="canvas-emulator", daemon=True
    )
    thread.start()
    username, password = next(iter(state.users.items()))
    try:
        yield RunningCanvasEmulator(server, f"http://{host}:{server.server_address[1]}", username, password)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
