#!/usr/bin/env bash
# Installs the Python client with its test extras into a venv and runs `mypy --strict` on the
# package, then its tests (against a real sluice and a real redis-server, both started by the
# tests on free ports).
#
#   clients/python/run-tests.sh [VENV] [pytest args...]
#
# VENV: an existing virtualenv to use, or where to create one (default: .venv-client at the
# repository root). The tests start $SLUICE_BIN (default /tmp/sluice-for-client, else the
# repository's .build/release/sluice) and need redis-server on the PATH.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.venv-client}"
shift || true

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# Absolute: the script changes directory below.
venv="$(cd "$venv" && pwd)"
py="$venv/bin/python"

if [ -z "${SLUICE_BIN:-}" ]; then
    if [ -x /tmp/sluice-for-client ]; then
        export SLUICE_BIN=/tmp/sluice-for-client
    elif [ -x "$repo/.build/release/sluice" ]; then
        export SLUICE_BIN="$repo/.build/release/sluice"
    fi
fi

"$py" -m pip install --quiet --disable-pip-version-check "$here[test]"

cd "$here"
echo "== mypy --strict src/sluice"
"$py" -m mypy --strict src/sluice
echo "== mypy --strict examples"
"$py" -m mypy --strict "$repo/examples/fake_upstream.py" "$repo/examples/agent_server.py"
echo "== pytest (SLUICE_BIN=${SLUICE_BIN:-unset})"
# The suite takes about 40 seconds; the bound only stops a hang from eating CI's time.
exec timeout --kill-after=10 600 "$py" -m pytest -q tests "$@"
