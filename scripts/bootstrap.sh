#!/usr/bin/env bash
# Creates .venv and installs the project with the pinned set in constraints.txt (idempotent, fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat constraints.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing airflow-provider-credly and its pinned dependencies into .venv ..."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==26.3"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[duckdb,postgres,dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
