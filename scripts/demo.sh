#!/usr/bin/env bash
# Sets everything up, then runs every example DAG against the local Credly emulator into .demo/warehouse.duckdb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
