#!/usr/bin/env bash
# A real local Airflow for the example DAGs, by one command: PostgreSQL metadata DB (database
# airflow_credly_local on 127.0.0.1:5432, recreated), scheduler, dag-processor, triggerer and api-server
# (LocalExecutor), the Credly and Canvas Credentials emulators, the connections, the duckdb_warehouse pool.
# Open the printed URL; Ctrl-C stops everything. Options: --help.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m airflow_provider_credly.testing.deployment "$@"
