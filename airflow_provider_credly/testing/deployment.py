"""A real local Airflow deployment for the example DAGs: PostgreSQL metadata DB, scheduler, dag-processor,
triggerer and api-server (LocalExecutor, or CeleryExecutor with Redis and workers), each its own process.

Used by the deployment tests and by ``scripts/airflow_local.sh`` (``python -m
airflow_provider_credly.testing.deployment``). Everything binds to 127.0.0.1. The api-server runs the
SimpleAuthManager with every user an admin: a local playground, never a production set-up.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

__all__ = [
    "DUCKDB_POOL",
    "AirflowApi",
    "AirflowDeployment",
    "create_database",
    "drop_database",
    "example_connections",
    "free_port",
    "spawn_canvas_process",
    "worker_hostname",
]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "dags_examples"
# Every example task that opens the DuckDB warehouse file runs in this one-slot pool (one writer per file).
DUCKDB_POOL = "duckdb_warehouse"
POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# this module's import path, also when it runs as ``python -m`` (where ``__name__`` is ``__main__``)
_MODULE = "airflow_provider_credly.testing.deployment"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the deployment: ``CREDLY_WORKER_HOSTNAME`` when set (so workers on one
    machine record distinct hostnames in their task instances), else the machine's FQDN.
    """
    return os.environ.get("CREDLY_WORKER_HOSTNAME") or socket.getfqdn()


def create_database(name: str, admin_dsn: str = POSTGRES_ADMIN_DSN) -> str:
    """Drop and create PostgreSQL database ``name``; return its SQLAlchemy URL (psycopg2 driver)."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(part.split("=", 1) for part in admin_dsn.split())
    return f"postgresql+psycopg2://{params['user']}@{params['host']}:{params['port']}/{name}"


def drop_database(name: str, admin_dsn: str = POSTGRES_ADMIN_DSN) -> None:
    """Drop PostgreSQL database ``name`` if it exists (its sessions are closed first)."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class AirflowApi:
    """A small client of the api-server's REST API (``/api/v2``), authenticated with a SimpleAuthManager JWT.

    :param base_url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        response = self.session.get(f"{self.base_url}/auth/token", timeout=30)
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method /api/v2<path>``; the parsed JSON body (``None`` when empty); raises on HTTP errors."""
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def dag_ids(self) -> list[str]:
        """The DAGs the dag-processor has serialized."""
        return sorted(d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 1000})["dags"])

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to import."""
        errors: list[dict[str, Any]] = self.request("GET", "/importErrors")["import_errors"]
        return errors

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        """Create (or resize) pool ``name``."""
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        try:
            self.request("POST", "/pools", json=body)
        except RuntimeError:
            self.request("PATCH", f"/pools/{name}", json=body)

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` (a scheduled DAG then also gets its latest scheduled run)."""
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        """Pause ``dag_id``: the scheduler starts none of its tasks."""
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def reparse(self, dag_id: str) -> None:
        """Ask the dag-processor to parse ``dag_id``'s file now, not after ``min_file_process_interval``.

        An asset watcher's trigger is registered when the file is parsed with the DAG unpaused: after
        :meth:`unpause` this starts it within seconds instead of up to 30.
        """
        token = self.request("GET", f"/dags/{dag_id}")["file_token"]
        self.request("PUT", f"/parseDagFile/{token}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a manual run without logical date (as the UI does); return its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        run: dict[str, Any] = self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id``, oldest first."""
        params = {"limit": 1000, "order_by": "id"}
        runs: list[dict[str, Any]] = self.request("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances (mapped ones each on their own) of one run."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        tis: list[dict[str, Any]] = self.request("GET", path, params={"limit": 1000})["task_instances"]
        return tis

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The asset events an asset-triggered run consumed (``extra`` holds a trigger's payload)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents"
        events: list[dict[str, Any]] = self.request("GET", path)["asset_events"]
        return events

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The whole log of one try of a task instance, one line per event."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true", "map_index": map_index}
        body = self.request("GET", path, params=params, headers={"Accept": "application/json"})
        content = body.get("content", "")
        if isinstance(content, str):
            return content
        return "\n".join(
            json.dumps(item, default=str) if isinstance(item, dict) else str(item) for item in content
        )

    def wait_for_runs(
        self,
        dag_ids: Sequence[str],
        *,
        timeout: float,
        at_least: int | Mapping[str, int] = 1,
        interval: float = 1.0,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Poll until every DAG has ``at_least`` runs and all its runs are finished; return the runs.

        :param on_poll: called every poll (e.g. to fail fast when a component died).
        :raises TimeoutError: with the unfinished runs when ``timeout`` seconds pass.
        """
        deadline = time.monotonic() + timeout
        while True:
            runs = {dag_id: self.dag_runs(dag_id) for dag_id in dag_ids}
            pending = {
                dag_id: [
                    (r["dag_run_id"], r["state"]) for r in dag_runs if r["state"] not in TERMINAL_RUN_STATES
                ]
                for dag_id, dag_runs in runs.items()
            }
            short = {
                dag_id: len(runs[dag_id])
                for dag_id in dag_ids
                if len(runs[dag_id]) < (at_least if isinstance(at_least, int) else at_least.get(dag_id, 1))
            }
            if not short and not any(pending.values()):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs not finished: {pending}; too few runs: {short}")
            if on_poll is not None:
                on_poll()
            time.sleep(interval)


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


@dataclass
class AirflowDeployment:
    """Airflow components as child processes sharing one ``AIRFLOW_HOME`` and one metadata database.

    Use as a context manager: every started process group is stopped on exit, also after a failure.

    :param home: ``AIRFLOW_HOME`` (logs under ``home/logs``, component output under ``home/components``).
    :param database_url: SQLAlchemy URL of the metadata DB (see :func:`create_database`).
    :param connections: ``{conn_id: connection JSON dict}``, passed as ``AIRFLOW_CONN_<ID>`` to every component.
    :param env: more environment variables for every component (e.g. the examples' settings).
    :param dags_folder: the DAG folder (default: the example DAGs).
    :param broker_url: Celery broker (``redis://127.0.0.1:6379/0``), for :meth:`start_celery_workers`.
    """

    home: Path
    database_url: str
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    dags_folder: Path = EXAMPLES
    broker_url: str = "redis://127.0.0.1:6379/0"
    api_port: int = field(default_factory=free_port)
    components: list[_Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        (self.home / "components").mkdir(parents=True, exist_ok=True)
        from cryptography.fernet import Fernet

        # Shared by every component: JWTs signed by one are accepted by the others, secrets decrypt everywhere.
        self._secrets = {
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        }
        # A queue of its own: messages left in Redis by another deployment are never picked up.
        self.queue = f"credly_{secrets.token_hex(4)}"
        self._log_ports = (free_port(), free_port())

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<api port>``."""
        return f"http://127.0.0.1:{self.api_port}"

    def base_env(self, executor: str = "LocalExecutor") -> dict[str, str]:
        """The environment of every component (and of ``airflow`` CLI calls)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(self._secrets)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                "AIRFLOW__CORE__EXECUTOR": executor,
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{_MODULE}.worker_hostname",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_ports[0]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._log_ports[1]),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.database_url.replace("+psycopg2", ""),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
            }
        )
        for conn_id, conn in self.connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env.update(self.env)
        return env

    def airflow_command(self) -> list[str]:
        """``airflow`` of this interpreter's environment."""
        script = Path(sys.executable).with_name("airflow")
        return [str(script)] if script.exists() else [sys.executable, "-m", "airflow"]

    def cli(self, *args: str, timeout: float = 300) -> str:
        """Run ``airflow <args>`` to completion; its output, or ``RuntimeError`` with the output."""
        done = subprocess.run(
            [*self.airflow_command(), *args],
            env=self.base_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def migrate(self) -> None:
        """``airflow db migrate``."""
        self.cli("db", "migrate")

    def start(self, name: str, *args: str, executor: str = "LocalExecutor", **env: str) -> None:
        """Start ``airflow <args>`` as component ``name`` in its own process group, output to a file."""
        log_path = self.home / "components" / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            [*self.airflow_command(), *args],
            env={**self.base_env(executor), **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches its task processes too
        )
        self.components.append(_Component(name, process, log_path, log_file))

    def start_api_server(self, executor: str = "LocalExecutor", wait: bool = True) -> None:
        """The api-server (UI and REST API) alone; with ``wait``, returns when the API answers."""
        self.start(
            "api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), executor=executor
        )
        if wait:
            self.wait_healthy()

    def start_core(self, executor: str = "LocalExecutor") -> None:
        """api-server, scheduler, dag-processor and triggerer; returns when the API answers."""
        self.start_api_server(executor, wait=False)
        self.start("scheduler", "scheduler", executor=executor)
        self.start("dag-processor", "dag-processor", executor=executor)
        self.start("triggerer", "triggerer", executor=executor)
        self.wait_healthy()

    def start_celery_workers(self, names: Sequence[str]) -> None:
        """One ``airflow celery worker`` per name (concurrency 1), recording ``name`` as its hostname."""
        for name in names:
            self.start(
                name,
                "celery",
                "worker",
                "--queues",
                self.queue,
                "--concurrency",
                "1",
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",
                executor="CeleryExecutor",
                CREDLY_WORKER_HOSTNAME=name,
            )
        # a worker still importing Airflow takes no task: one that is ready first would take them all
        for name in names:
            self.wait_for_output(name, f"{name}@", " ready.")

    def wait_for_output(self, name: str, *parts: str, timeout: float = 120) -> None:
        """Wait until a line of component ``name``'s output holds every one of ``parts``."""
        comp = next(c for c in self.components if c.name == name)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            lines = comp.log_path.read_text(errors="replace").splitlines()
            if any(all(part in line for part in parts) for line in lines):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow component {name}: no line with {parts} within {timeout} s")
            time.sleep(0.5)

    def check_alive(self) -> None:
        """``RuntimeError`` with the tail of its output when a component exited."""
        for comp in self.components:
            code = comp.process.poll()
            if code is not None:
                tail = comp.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Airflow component {comp.name} exited with {code}:\n{tail}")

    def wait_healthy(self, timeout: float = 120) -> None:
        """Wait until the api-server answers ``/api/v2/monitor/health``."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"api-server on {self.api_url} did not answer within {timeout} s")
            time.sleep(0.5)

    def api(self) -> AirflowApi:
        """A REST client of the api-server."""
        return AirflowApi(self.api_url)

    def wait_for_dags(self, api: AirflowApi, dag_ids: Sequence[str], timeout: float = 120) -> None:
        """Wait until the dag-processor serialized ``dag_ids``; fail at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            errors = api.import_errors()
            if errors:
                raise RuntimeError(f"DAG import errors: {json.dumps(errors, indent=1)[:4000]}")
            missing = sorted(set(dag_ids) - set(api.dag_ids()))
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed within {timeout} s: {missing}")
            time.sleep(1)

    def component_logs(self) -> dict[str, str]:
        """``{component name: its output so far}`` (a component started twice appends to one file)."""
        return {
            comp.name: comp.log_path.read_text(errors="replace")
            for comp in self.components
            if comp.log_path.exists()
        }

    def log_files(self) -> Iterator[Path]:
        """Every file under the deployment's log folders (task logs, component output)."""
        for folder in (self.home / "logs", self.home / "components"):
            if folder.exists():
                yield from (p for p in folder.rglob("*") if p.is_file())

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``timeout`` s (idempotent)."""
        for comp in self.components:
            if comp.process.poll() is None:
                _signal_group(comp.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for comp in self.components:
            try:
                comp.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # the leader may be gone while its task processes live on: the group gets SIGKILL regardless
            _signal_group(comp.process, signal.SIGKILL)
            if comp.process.poll() is None:
                comp.process.wait(timeout=10)
            comp.log_file.close()
        self.components.clear()

    def __enter__(self) -> AirflowDeployment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------- command line


def spawn_canvas_process(port: int = 0, assertions: int = 60) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Run ``python -m airflow_provider_credly.testing.canvas``; the process and its listening line's
    ``url``, ``username`` and ``password``. Stop it with ``terminate()``.
    """
    cmd = [sys.executable, "-m", "airflow_provider_credly.testing.canvas", "--port", str(port)]
    cmd += ["--assertions", str(assertions)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        process.wait()
        raise RuntimeError(f"Canvas emulator did not start: {line!r}")
    info = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    return process, info


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example DAGs in a local Airflow against both emulators until interrupted."""
    from airflow_provider_credly.testing import spawn_emulator_process

    parser = argparse.ArgumentParser(prog="scripts/airflow_local.sh", description=main.__doc__)
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow_local", help="AIRFLOW_HOME")
    parser.add_argument("--database", default="airflow_credly_local", help="PostgreSQL database (recreated)")
    parser.add_argument("--port", type=int, default=8080, help="api-server port")
    parser.add_argument("--badges", type=int, default=2000, help="badges seeded in the Credly emulator")
    parser.add_argument("--unpause", action="store_true", help="unpause every example DAG")
    args = parser.parse_args(argv)

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM both stop everything (SIGINT may arrive ignored when started in the background).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    credly = spawn_emulator_process(badges=args.badges, employees=120, seed=1)
    canvas, canvas_info = spawn_canvas_process()
    warehouse = args.home / "warehouse.duckdb"
    try:
        database_url = create_database(args.database)
        deployment = AirflowDeployment(
            home=args.home,
            database_url=database_url,
            connections=example_connections(
                credly.base_url, credly.token, credly.org_id, canvas_info, warehouse
            ),
            api_port=args.port,
        )
        with deployment:
            print(f"Migrating the metadata database {args.database} ...", flush=True)
            deployment.migrate()
            deployment.start_core()
            api = deployment.api()
            api.set_pool(DUCKDB_POOL, 1, "one writer at a time per DuckDB file")
            if args.unpause:
                examples = sorted(path.stem for path in EXAMPLES.glob("*.py"))
                deployment.wait_for_dags(api, examples)
                for dag_id in examples:
                    api.unpause(dag_id)
            print(
                f"\nAirflow UI and API: {deployment.api_url}  (every user is admin)\n"
                f"Credly emulator: {credly.base_url}; Canvas Credentials emulator: {canvas_info['url']}\n"
                f"DuckDB warehouse: {warehouse}; component logs: {deployment.home / 'components'}\n"
                "Press Ctrl-C to stop everything.",
                flush=True,
            )
            try:
                while True:
                    deployment.check_alive()
                    time.sleep(2)
            except KeyboardInterrupt:
                print("Stopping ...", flush=True)
    finally:
        credly.stop()
        canvas.terminate()
        canvas.wait(timeout=10)
    return 0


def example_connections(
    credly_url: str, credly_token: str, org_id: str, canvas: Mapping[str, str], warehouse: Path
) -> dict[str, dict[str, Any]]:
    """The connections the example DAGs use: Credly and Canvas (the emulators) and the DuckDB warehouse."""
    duckdb = {"conn_type": "duckdb", "host": str(warehouse)}
    return {
        "credly_default": {
            "conn_type": "credly",
            "host": credly_url,
            "password": credly_token,
            "extra": {"organization_id": org_id, "backoff_base": 0.05, "backoff_max": 1},
        },
        "canvas_credentials_default": {
            "conn_type": "canvas_credentials",
            "host": canvas["url"],
            "login": canvas["username"],
            "password": canvas["password"],
            "extra": {"backoff_base": 0.05, "backoff_max": 1},
        },
        "duckdb_warehouse": duckdb,
        "duckdb_default": duckdb,
    }


if __name__ == "__main__":
    sys.exit(main())
