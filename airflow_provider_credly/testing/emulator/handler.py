"""The request-handler plumbing both emulators share: HTTP/1.1 keep-alive, no logging, one entry point."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonApiHandler(BaseHTTPRequestHandler):
    """Routes every method to ``_serve(method)``; subclasses parse, apply faults and answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks would drown in access logs."""

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
