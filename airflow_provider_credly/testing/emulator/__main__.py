"""``python -m airflow_provider_credly.testing.emulator``: run the Credly API emulator until killed."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from .server import make_server
from .state import EmulatorState


def build_parser() -> argparse.ArgumentParser:
    """Command line options."""
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_credly.testing.emulator", description=__doc__
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on startup)")
    p.add_argument("--badges", type=int, default=1000, help="seeded badges")
    p.add_argument("--employees", type=int, default=50, help="seeded employees")
    p.add_argument("--templates", type=int, default=20, help="badge templates")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--token", default=None, help="authorization token (default derived from the seed)")
    p.add_argument("--hv-page-size", type=int, default=50, help="page size of the high-volume endpoint")
    p.add_argument("--token-age-days", type=float, default=10.0, help="age of the token (its created_at)")
    p.add_argument(
        "--token-permissions", default="read,write,delete", help="what the token may do (comma-separated)"
    )
    p.add_argument("--rate-limit", type=float, default=None, help="requests per second (429 beyond)")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500/502/503")
    p.add_argument("--error-after-rate", type=float, default=0.0, help="fraction of writes applied then lost")
    p.add_argument("--drop-rate", type=float, default=0.0, help="fraction of connections dropped")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--fail-paths", default=None, help="regex limiting faults to matching paths")
    p.add_argument("--fault-seed", type=int, default=None, help="seed of the fault RNG (default --seed)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Build the state, bind, print the listening line and serve forever."""
    args = build_parser().parse_args(argv)
    state = EmulatorState(
        seed=args.seed,
        badges=args.badges,
        employees=args.employees,
        templates=args.templates,
        token=args.token,
        hv_page_size=args.hv_page_size,
        token_age_days=args.token_age_days,
        token_permissions=[p.strip() for p in args.token_permissions.split(",") if p.strip()],
    )
    server = make_server(
        state,
        args.host,
        args.port,
        rate_limit=args.rate_limit,
        error_rate=args.error_rate,
        error_after_rate=args.error_after_rate,
        drop_rate=args.drop_rate,
        latency_ms=args.latency_ms,
        fail_paths=args.fail_paths,
        seed=args.seed if args.fault_seed is None else args.fault_seed,
    )

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"credly-emulator listening on http://{host}:{port}/v1 org={state.org_id} token={state.token}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
