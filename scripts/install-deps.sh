#!/usr/bin/env bash
# Installs what Sluice needs on Debian/Ubuntu beside the Swift toolchain:
# the C libraries it links, Redis (server, redis-cli, redis-benchmark) for tests and
# benchmarks, and for the tests a Python virtualenv with redis-py + pytest and Chromium.
#   scripts/install-deps.sh            # system packages only
#   scripts/install-deps.sh --python   # also the test virtualenv (.venv-test)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libsqlite3-dev libhiredis-dev redis-server redis-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# CI always refreshes the package lists first; elsewhere only when something is missing.
if [ ${#missing[@]} -gt 0 ] || [ "${CI:-}" = "true" ]; then
  echo "==> apt-get install ${packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# Debian starts a redis-server on :6379 when it installs one; Sluice's tests start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi

if [ "${1:-}" = "--python" ]; then
  # The dashboard test opens the page in a real headless Chromium.
  if ! command -v chromium >/dev/null 2>&1; then
    echo "==> apt-get install chromium (for the dashboard test)"
    [ "${CI:-}" = "true" ] || $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  # The arm64 (NEON) vector kernels are checked by cross-compiling them and running them
  # under qemu-user (tests/kernels/check-arm64.sh).
  if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
    echo "==> apt-get install gcc-aarch64-linux-gnu qemu-user (for the arm64 kernel check)"
    [ "${CI:-}" = "true" ] || $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
  fi
  if [ ! -x .venv-test/bin/python ]; then
    echo "==> python virtualenv .venv-test"
    if ! python3 -m venv .venv-test 2>/dev/null; then
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv .venv-test
    fi
  fi
  .venv-test/bin/python -m pip install -q --disable-pip-version-check redis pytest pexpect
  # The caching libraries the compatibility tests drive unmodified (tests/e2e/test_libraries.py).
  .venv-test/bin/python -m pip install -q --disable-pip-version-check litellm langchain-community langchain-core aiocache flask-caching
  # The Python client's own dependencies and tools (clients/python/run-tests.sh installs the package).
  .venv-test/bin/python -m pip install -q --disable-pip-version-check openai mypy pytest-asyncio
fi
