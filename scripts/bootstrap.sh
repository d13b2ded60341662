#!/usr/bin/env bash
# Creates the pinned environments (idempotent, fast when done). Usage: bootstrap.sh [newest|floor|all|middle]
#   all also installs Debian's chromium and chromium-driver where missing (the connection-form browser test;
#   as root or with password-less sudo; otherwise it says what to install and that test skips, or fails
#   under CI=true), in the background while the environments install.
#   newest (default): .venv        Python 3.13, Airflow 3.3.2, constraints.txt        (demo, lint, types, tests)
#   floor:            .venv-floor  Python 3.11, Airflow 3.3.0 and the oldest versions pyproject.toml allows,
#                                  constraints-floor.txt                              (tests)
#   middle (only when asked for):  .venv-middle  Python 3.12, Airflow 3.3.1, constraints-middle.txt
#                                  (CREDLY_TEST_MIDDLE=1 bash scripts/test.sh; not part of "all")
# PYTHON_NEWEST / PYTHON_FLOOR / PYTHON_MIDDLE override the interpreters (found on PATH, else under pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."

# find_python 3.13 -> the path of a working Python 3.13 (pyenv shims exist for versions that are not active)
find_python() {
  local want=$1 candidate
  for candidate in "python$want" "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/$want"*/bin/"python$want"; do
    if "$candidate" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$want')" 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return
    fi
  done
  echo "bootstrap: no Python $want found on PATH or under pyenv (install it or set PYTHON_NEWEST/PYTHON_FLOOR)" >&2
  return 1
}

command -v flock >/dev/null || flock() { shift; "$@"; }  # no util-linux: the environments install in turn

# make_env DIR PYTHON CONSTRAINTS: (re)creates DIR when its Python differs, installs when the pins changed
make_env() {
  local dir=$1 python=$2 constraints=$3 version
  version=$("$python" -c 'import sys; print(sys.version.split()[0])')
  if [ -x "$dir/bin/python" ] && [ "$("$dir/bin/python" -c 'import sys; print(sys.version.split()[0])')" != "$version" ]; then
    echo "Recreating $dir for Python $version ..."
    rm -rf "$dir"
  fi
  [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
  local stamp
  stamp="$dir/.installed-$( (echo "$version"; cat "$constraints" pyproject.toml) | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "Installing airflow-provider-credly and the pins of $constraints into $dir (Python $version) ..."
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" pip
    # every pin first: writes nothing into the checkout, so both environments can install side by side
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$constraints"
    # the editable install writes airflow_provider_credly.egg-info into the checkout: one at a time
    flock .bootstrap.lock "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
      -c "$constraints" -e ".[duckdb,postgres,dev]"
    rm -f "$dir"/.installed-*
    touch "$stamp"
  fi
}

# ensure_browser: Debian's chromium + chromium-driver, unless both are on PATH already
ensure_browser() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "bootstrap: chromium/chromedriver missing; install Debian's chromium and chromium-driver (needs root)" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "bootstrap: chromium/chromedriver missing and no apt-get here; install Chromium and its driver" >&2
    return 0
  fi
  echo "Installing Debian's chromium and chromium-driver (browser test of the connection forms) ..."
  local log
  log=$(mktemp)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
    echo "bootstrap: installing chromium failed:" >&2
    tail -20 "$log" >&2
  fi
  rm -f "$log"
}

which_envs="${1:-newest}"
case "$which_envs" in newest | floor | all | middle) ;; *) echo "usage: $0 [newest|floor|all|middle]" >&2; exit 2 ;; esac
if [ "$which_envs" = middle ]; then
  make_env .venv-middle "${PYTHON_MIDDLE:-$(find_python 3.12)}" constraints-middle.txt
  exit 0
fi
browser_pid=""
if [ "$which_envs" = all ]; then
  ensure_browser &
  browser_pid=$!
fi
floor_pid=""
if [ "$which_envs" != newest ]; then
  python=${PYTHON_FLOOR:-$(find_python 3.11)}
  # "all": the floor installs beside the newest (downloads and unpacking overlap on the 2 cores)
  if [ "$which_envs" = all ] && command -v flock >/dev/null; then
    make_env .venv-floor "$python" constraints-floor.txt &
    floor_pid=$!
  else
    make_env .venv-floor "$python" constraints-floor.txt
  fi
fi
if [ "$which_envs" != floor ]; then
  python=${PYTHON_NEWEST:-$(find_python 3.13)}
  make_env .venv "$python" constraints.txt
fi
[ -z "$floor_pid" ] || wait "$floor_pid"
[ -z "$browser_pid" ] || wait "$browser_pid"
