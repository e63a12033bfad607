#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs the Swift tests, then
# the end-to-end tests against a real sluice process with real clients (redis-cli,
# redis-benchmark, redis-py) and a real redis-server started here on a free loopback port,
# then the fuzzers for a minute. The vector kernels are also checked for arm64, cross-compiled
# and run under qemu-user (tests/kernels/check-arm64.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --python

echo "==> swift build"
# The import check turns a test importing a module it does not declare into an error here,
# instead of a build that passes or fails depending on which target happens to compile first.
swift build --build-tests --explicit-target-dependency-import-check error
echo "==> swift test"
# Full log in .build/swift-test.log; on screen: failures and the summary line.
swift test --skip-build 2>&1 | tee .build/swift-test.log | grep -E "^✘|^✔ Test run|error:|Fatal" || true
if ! grep -qE "Test run with [0-9]+ tests? .*passed" .build/swift-test.log; then
  echo "swift test failed"; exit 1
fi

echo "==> vector kernels on arm64 (cross-compiled, under qemu-user) and on this CPU"
tests/kernels/check-arm64.sh

# A redis-server of our own for the tests that compare with Redis; stopped on exit.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis_dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
cleanup() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$redis_dir"; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "==> end-to-end tests (pytest)"
SLUICE_BIN="$PWD/.build/debug/sluice" SLUICE_TEST_REDIS_PORT="$port" \
  .venv-test/bin/python -m pytest -q --durations=15 tests/e2e

# The Python client (clients/python): mypy --strict, then its tests against a real sluice,
# redis-server and the openai / langchain-core packages pointed at a fake upstream.
echo "==> Python client (clients/python)"
SLUICE_BIN="$PWD/.build/debug/sluice" clients/python/run-tests.sh .venv-test

# The parser and command-sequence fuzzers (libFuzzer + AddressSanitizer), 30 s each from the
# seed corpus; any crash fails the run. Skip with SLUICE_SKIP_FUZZ=1 (the build takes minutes).
if [ "${SLUICE_SKIP_FUZZ:-}" != "1" ]; then
  scripts/fuzz.sh 30
fi
