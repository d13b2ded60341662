"""HTTP plumbing: threaded keep-alive server, fault application and the admin endpoints."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from datetime import datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from .errors import EmulatorRefusal, error_payload
from .faults import FaultInjector, malformed_body
from .handler import JsonApiHandler
from .routes import Handler, Request, Response, dispatch, resolve
from .state import EmulatorState
from .util import FakeClock, parse_timestamp

MAX_BODY = 16 * 1024 * 1024
_ERROR_MESSAGES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class EmulatorServer(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server holding the state and the fault injector."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: EmulatorState, faults: FaultInjector) -> None:
        self.state = state
        self.faults = faults
        faults.watch_odd_values(lambda odd: setattr(state, "odd_values", odd))  # read by the badge renders
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track open connections so ``stop`` can close idle keep-alive sockets."""
        with self._connections_lock:
            self._connections.add(request)
        self.state.stats.incr("connections")
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget a finished connection."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> int:
        """How many client connections are open now (a test waits for a killed client's to close)."""
        with self._connections_lock:
            return len(self._connections)

    def close_connections(self) -> None:
        """Abort every open client connection."""
        with self._connections_lock:
            sockets = list(self._connections)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        """Stop serving (call from another thread than ``serve_forever``) and close everything."""
        self.shutdown()
        self.close_connections()
        self.server_close()


def make_server(
    state: EmulatorState, host: str = "127.0.0.1", port: int = 0, **faults: Any
) -> EmulatorServer:
    """Bind a server for ``state`` (``port=0`` picks a free port); call ``serve_forever`` to run it."""
    return EmulatorServer((host, port), state, FaultInjector(**{"seed": state.seed, **faults}))


class EmulatorRequestHandler(JsonApiHandler):
    """Parses requests, applies faults, dispatches to the routes and writes one-shot responses."""

    server_version = "CredlyEmulator/1.0"
    sys_version = ""
    timeout = 300
    server: EmulatorServer

    # ------------------------------------------------------------------ plumbing
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        raw: str | bytes | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        body = b""
        head = [
            f"HTTP/1.1 {status} {_reason(status)}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: CredlyEmulator",
        ]
        if status != 204:
            text = raw if raw is not None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            body = text if isinstance(text, bytes) else text.encode()
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.server.state.stats.count_status(status)

    def _drop(self) -> None:
        self.close_connection = True
        self.server.state.stats.incr("dropped")

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}/v1"

    def _serve(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(400, error_payload("Malformed request body"))
            return
        if split.path.startswith("/_emulator/"):
            self._admin(method, split.path, body)
            return
        path = unquote(split.path)
        rel = path[3:] if path.startswith("/v1/") else None
        handler, kind, params = resolve(method, rel) if rel is not None else (None, "not_found", {})
        state.stats.count_request(method, kind)
        state.stats.started(kind)
        try:
            self._answer(method, split, rel, path, body, handler, kind, params)
        finally:
            state.stats.ended(kind)

    def _answer(
        self,
        method: str,
        split: SplitResult,
        rel: str | None,
        path: str,
        body: bytes,
        handler: Handler | None,
        kind: str,
        params: dict[str, str],
    ) -> None:
        state = self.server.state
        decision = self.server.faults.decide(method, split.path)
        if decision.latency_s:
            time.sleep(decision.latency_s)
        if decision.action == "rate_limited":
            state.stats.incr("rate_limited")
            headers = {"Retry-After": decision.retry_after or "1"}
            self._send(429, error_payload("Rate limit exceeded. Retry later."), headers)
            return
        if decision.action == "error":
            state.stats.incr("errors_injected")
            self._send(decision.status, error_payload(_ERROR_MESSAGES[decision.status]))
            return
        if decision.action == "drop":
            self._drop()
            return
        query = parse_qsl(split.query, keep_blank_values=True)
        req = Request(method, rel or path, query, self.headers, body, self._base_url(), params)
        try:
            response = dispatch(state, req, handler, kind)
        except Exception:  # pragma: no cover - emulator bug: report it as a 500 and keep serving
            traceback.print_exc(file=sys.stderr)
            response = Response(500, error_payload("Emulator internal error"))
        if decision.loses(response.status):
            state.stats.incr("errors_after")
            if decision.after == "drop":
                self._drop()
                return
            response = Response(500, error_payload(_ERROR_MESSAGES[500]))
        if decision.malformed and 200 <= response.status < 300 and response.status != 204:
            state.stats.incr("malformed_injected")
            text = response.raw or json.dumps(response.payload, separators=(",", ":"), ensure_ascii=False)
            body, content_type = malformed_body(decision.malformed, text.encode())
            self._send(response.status, None, response.headers, body, content_type)
            return
        self._send(response.status, response.payload, response.headers, response.raw)

    # ------------------------------------------------------------------ admin
    def _admin(self, method: str, path: str, body: bytes) -> None:
        server, state = self.server, self.server.state
        try:
            payload = json.loads(body) if body.strip() else {}
            if path == "/_emulator/stats" and method == "GET":
                self._send(200, admin_stats(server))
            elif path == "/_emulator/faults" and method in ("GET", "POST", "DELETE"):
                if method == "DELETE" or payload.pop("clear", False):
                    server.faults.clear()
                if method == "POST":
                    server.faults.configure(**payload)
                self._send(200, server.faults.as_dict())
            elif path == "/_emulator/reset" and method == "POST":
                state.reset()
                self._send(200, admin_stats(server))
            elif path == "/_emulator/clock" and method == "POST":
                self._send(200, {"now": set_clock(state, payload)})
            else:
                self._send(404, error_payload("Unknown admin endpoint"))
        except (TypeError, ValueError, EmulatorRefusal) as exc:
            self._send(400, error_payload(f"Invalid admin request: {exc}"))


def admin_stats(server: EmulatorServer) -> dict[str, Any]:
    """Counters, fault knobs and data sizes (``GET /_emulator/stats``)."""
    state = server.state
    with state.lock:
        return {
            **state.stats.snapshot(),
            "badges_count": state.store.count(),
            "events_count": len(state.events),
            "employees_count": len(state.workforce.by_id),
            "faults": server.faults.as_dict(),
        }


def set_clock(state: EmulatorState, payload: dict[str, Any]) -> str:
    """Switch to a ``FakeClock``: ``{"now": "<timestamp>"}`` and/or ``{"advance_seconds": n}``."""
    with state.lock:
        clock = state.clock if isinstance(state.clock, FakeClock) else FakeClock(state.clock())
        if "now" in payload:
            clock.set(datetime.fromtimestamp(parse_timestamp(payload["now"])[0] / 1000, clock().tzinfo))
        clock.advance(float(payload.get("advance_seconds", 0)))
        state.clock = clock
        return clock().isoformat()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
