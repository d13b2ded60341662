"""``python -m airflow_provider_credly.testing.canvas``: run the Canvas Credentials emulator until killed."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import run_canvas_emulator
from .state import CanvasState


def build_parser() -> argparse.ArgumentParser:
    """Command line options."""
    p = argparse.ArgumentParser(prog="python -m airflow_provider_credly.testing.canvas", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8766, help="0 picks a free port (printed on startup)")
    p.add_argument("--assertions", type=int, default=60, help="seeded assertions")
    p.add_argument("--badge-classes", type=int, default=2, help="seeded badge classes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--username", default="admin@example.edu")
    p.add_argument("--password", default="emulator-password")
    p.add_argument("--token-lifetime", type=float, default=3600.0, help="access token lifetime (seconds)")
    p.add_argument("--rate-limit", type=float, default=None, help="requests per second (429 beyond)")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500/502/503")
    p.add_argument("--error-after-rate", type=float, default=0.0, help="fraction of writes applied then lost")
    p.add_argument("--drop-rate", type=float, default=0.0, help="fraction of connections dropped")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    p.add_argument("--fail-paths", default=None, help="regex limiting faults to matching paths")
    return p


def main(argv: list[str] | None = None) -> int:
    """Seed the state, bind, print the listening line and serve until SIGTERM or Ctrl-C."""
    args = build_parser().parse_args(argv)
    state = CanvasState.seeded(
        seed=args.seed,
        badge_classes=args.badge_classes,
        assertions=args.assertions,
        users={args.username: args.password},
        token_lifetime=args.token_lifetime,
    )
    faults = {
        "rate_limit": args.rate_limit,
        "error_rate": args.error_rate,
        "error_after_rate": args.error_after_rate,
        "drop_rate": args.drop_rate,
        "latency_ms": args.latency_ms,
        "fail_paths": args.fail_paths,
    }
    stop = threading.Event()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    with run_canvas_emulator(state, host=args.host, port=args.port, **faults) as emu:
        # Same shape as the Credly emulator's line: tools parse the key=value pairs.
        print(
            f"canvas-emulator listening on {emu.base_url} url={emu.base_url} "
            f"username={emu.username} password={emu.password}",
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
