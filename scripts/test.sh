#!/usr/bin/env bash
# Sets up both pinned environments, then runs lint and type checks once and pytest on each:
#   newest (.venv: Python 3.13, Airflow 3.3.2): the whole suite, packaging and deployment tests included
#   (the real deployments and the connection forms in headless Chromium, which bootstrap.sh installs);
#   floor (.venv-floor: Python 3.11, Airflow 3.3.0, oldest allowed dependencies): a subset that keeps the
#   whole run well under 15 minutes on 2 cores: tests/unit, every example DAG, the operator and sensor DAGs,
#   the DuckDB, PostgreSQL and Canvas transfers (about 1.5 minutes; not the fault/SIGKILL matrices or the
#   packaging test), then every example DAG once in a real LocalExecutor deployment (about 2 minutes more).
#   On a 2-core machine: about 8 minutes newest, 3.5 floor (2 workers; 11 minutes and 4 on one).
# Both pytest runs use 2 workers (pytest-xdist), each taking a whole test file at a time (--dist loadfile:
# a file's tests keep their order, e.g. the example DAGs in the demo's order). Each worker has its own Airflow
# home and metadata DB (tests/conftest.py), PostgreSQL schemas and deployment databases are named per
# process, emulators take free ports.
# Extra arguments go to both pytest runs (e.g. -k transfer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all
describe() {  # describe VENV -> "Python 3.13.0, Airflow 3.3.2" (metadata only: importing Airflow writes config)
  "$1/bin/python" -c 'import sys; from importlib.metadata import version as v; print("Python", sys.version.split()[0] + ", Airflow", v("apache-airflow"))'
}
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest, newest: $(describe .venv)"
newest_status=0
.venv/bin/pytest -n 2 --dist loadfile --durations=25 "$@" || newest_status=$?  # the floor still runs: one report for both
echo "== pytest, floor: $(describe .venv-floor)"
floor_tests=(
  tests/unit tests/integration/test_example_dags.py tests/integration/test_operators_dags.py
  tests/integration/test_sensor_dags.py tests/integration/test_transfer_duckdb.py
  tests/integration/test_transfer_postgres.py tests/integration/canvas/test_canvas_transfer.py
)
subset() {  # subset VENV [pytest args]: the floor's subset of the suite on VENV
  local venv=$1
  shift
  "$venv/bin/pytest" -n 2 --dist loadfile "${floor_tests[@]}" -m "not deployment" "$@"
}
# deployment VENV [pytest args]: every example DAG in a real LocalExecutor deployment (scheduler,
# dag-processor, triggerer, api-server), as users of that Airflow and Python run them; one round (the newest
# runs two)
deployment() {
  local venv=$1
  shift
  CREDLY_DEPLOYMENT_ROUNDS=1 "$venv/bin/pytest" \
    "tests/deployment/test_real_airflow.py::test_local_executor_runs_every_example" "$@"
}
status=0
subset .venv-floor "$@" || status=$?
echo "== pytest, floor: the real deployment"
deployment_status=0
deployment .venv-floor "$@" || deployment_status=$?
# opt-in (not in .ci/run): the same on the middle, Python 3.12 and Airflow 3.3.1
middle_status=0
if [ "${CREDLY_TEST_MIDDLE:-0}" = 1 ]; then
  bash scripts/bootstrap.sh middle
  echo "== pytest, middle: $(describe .venv-middle)"
  subset .venv-middle "$@" || middle_status=$?
  echo "== pytest, middle: the real deployment"
  deployment .venv-middle "$@" || middle_status=$?
fi
[ "$newest_status" -eq 0 ] || exit "$newest_status"
# 5 = the extra arguments selected no floor test (e.g. -k for a packaging test): not a failure
[ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"
[ "$deployment_status" -eq 0 ] || [ "$deployment_status" -eq 5 ] || exit "$deployment_status"
[ "$middle_status" -eq 0 ] || [ "$middle_status" -eq 5 ] || exit "$middle_status"
