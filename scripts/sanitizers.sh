#!/usr/bin/env bash
# The Swift test suite under AddressSanitizer, then ThreadSanitizer (each in its own build
# directory; minutes each, so not part of scripts/test.sh). Needs a redis-server on
# $SLUICE_TEST_REDIS_PORT for the differential tests, as scripts/test.sh starts one.
#   SLUICE_TEST_REDIS_PORT=6390 scripts/sanitizers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> AddressSanitizer"
swift build --build-tests --sanitize=address --scratch-path .build-asan
swift test --skip-build --sanitize=address --scratch-path .build-asan 2>&1 | grep -E "^✘|Test run with|ERROR: AddressSanitizer" || true
echo "==> ThreadSanitizer"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
swift test --skip-build --sanitize=thread --scratch-path .build-tsan 2>&1 \
  | grep -E "^✘|Test run with|WARNING: ThreadSanitizer" || true
