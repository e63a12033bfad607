#!/usr/bin/env bash
# The whole comparison in one command: builds release binaries, starts redis-server (no
# persistence, and AOF everysec) and Sluice (embedded and shared) on loopback, runs the same
# workloads against each, stops everything and writes benchmarks/RESULTS.md.
#   benchmarks/run.sh                 # about 8-10 minutes on 2 cores
#   benchmarks/run.sh --rounds 1      # quicker, noisier
# Needs redis-server, redis-cli and redis-benchmark (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> swift build -c release"
swift build -c release 2>&1 | tail -1
exec python3 benchmarks/suite.py "$@"
