"""Start the emulator in a background thread (``run_emulator``) or a subprocess (``spawn_emulator_process``)."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .faults import FAULT_NAMES
from .server import EmulatorServer, admin_stats, make_server
from .state import EmulatorState

_LISTENING = re.compile(r"listening on (?P<url>http://\S+/v1) org=(?P<org>\S+) token=(?P<token>\S+)")
_CLI_FAULTS = {
    "rate_limit": "--rate-limit",
    "error_rate": "--error-rate",
    "error_after_rate": "--error-after-rate",
    "drop_rate": "--drop-rate",
    "latency_ms": "--latency-ms",
    "fail_paths": "--fail-paths",
}


class _EmulatorHandle:
    """Shared conveniences of in-process and subprocess emulators."""

    base_url: str
    org_id: str
    token: str

    @property
    def root_url(self) -> str:
        """``http://host:port`` (no ``/v1``)."""
        return self.base_url[: -len("/v1")]

    @property
    def org_url(self) -> str:
        """``<base_url>/organizations/<org_id>``."""
        return f"{self.base_url}/organizations/{self.org_id}"

    @property
    def auth(self) -> tuple[str, str]:
        """``(token, "")`` for ``requests``' ``auth=``."""
        return self.token, ""

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization`` header for any HTTP client."""
        return {"Authorization": "Basic " + base64.b64encode(f"{self.token}:".encode()).decode()}

    def stop(self) -> None:
        """Stop the emulator."""
        raise NotImplementedError

    def __enter__(self) -> _EmulatorHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class RunningEmulator(_EmulatorHandle):
    """An emulator serving from a daemon thread of this process."""

    def __init__(self, state: EmulatorState, server: EmulatorServer, thread: threading.Thread) -> None:
        self.state = state
        self.server = server
        self.thread = thread
        self.host, self.port = str(server.server_address[0]), int(server.server_address[1])
        self.base_url = f"http://{self.host}:{self.port}/v1"
        self.org_id = state.org_id
        self.token = state.token

    def __enter__(self) -> RunningEmulator:
        return self

    def set_faults(self, **faults: Any) -> None:
        """Change fault knobs (see ``FaultConfig``)."""
        self.server.faults.configure(**faults)

    def clear_faults(self) -> None:
        """Disable every fault."""
        self.server.faults.clear()

    def stats(self) -> dict[str, Any]:
        """Same document as ``GET /_emulator/stats``."""
        return admin_stats(self.server)

    def stop(self) -> None:
        """Stop serving and close open connections (idempotent)."""
        if self.thread.is_alive():
            self.server.stop()
            self.thread.join(timeout=5)


def run_emulator(
    state: EmulatorState | None = None, host: str = "127.0.0.1", port: int = 0, **faults: Any
) -> RunningEmulator:
    """Start an emulator for ``state`` (default ``EmulatorState()``) in a background thread."""
    state = state if state is not None else EmulatorState()
    server = make_server(state, host, port, **faults)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="credly-emulator", daemon=True
    )
    thread.start()
    return RunningEmulator(state, server, thread)


class EmulatorProcess(_EmulatorHandle):
    """An emulator running in a child Python process (its own GIL); controlled over HTTP."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, org_id: str, token: str) -> None:
        self.process = process
        self.base_url, self.org_id, self.token = base_url, org_id, token

    def __enter__(self) -> EmulatorProcess:
        return self

    def _admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(f"{self.root_url}/_emulator/{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change fault knobs; returns the resulting configuration."""
        return self._admin("POST", "faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        """Disable every fault."""
        return self._admin("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``."""
        return self._admin("GET", "stats")

    def reset(self) -> dict[str, Any]:
        """Regenerate the data and zero the counters."""
        return self._admin("POST", "reset", {})

    def stop(self) -> None:
        """Terminate the child process (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def spawn_emulator_process(
    *,
    badges: int = 1000,
    employees: int = 50,
    seed: int = 1,
    templates: int = 20,
    hv_page_size: int = 50,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 180.0,
    python: str | None = None,
    **faults: Any,
) -> EmulatorProcess:
    """Run ``python -m airflow_provider_credly.testing.emulator`` and wait for its listening line."""
    unknown = set(faults) - FAULT_NAMES
    if unknown:
        raise TypeError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
    cmd = [python or sys.executable, "-m", "airflow_provider_credly.testing.emulator", "--host", host]
    cmd += ["--port", str(port), "--badges", str(badges), "--employees", str(employees), "--seed", str(seed)]
    cmd += ["--templates", str(templates), "--hv-page-size", str(hv_page_size)]
    if token:
        cmd += ["--token", token]
    for name, flag in _CLI_FAULTS.items():
        if faults.get(name) is not None:
            cmd += [flag, str(faults[name])]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = _first_line(process, startup_timeout)
    match = _LISTENING.search(line or "")
    if match is None:
        process.kill()
        process.wait()
        raise RuntimeError(f"emulator did not start (exit code {process.returncode}, output {line!r})")
    emu = EmulatorProcess(process, match["url"], match["org"], match["token"])
    rest = {k: v for k, v in faults.items() if k not in _CLI_FAULTS}
    if rest:
        emu.set_faults(**rest)
    return emu


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        for text in stream:
            lines.put(text)
        lines.put(None)

    assert process.stdout is not None
    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None
