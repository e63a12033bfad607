#!/usr/bin/env bash
# Installs what is missing, builds Sluice (release) and runs it on its embedded default:
# 127.0.0.1:7379, L1 in memory, L2 in ./sluice-data/sluice.db. Extra arguments go to
# `sluice serve` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product sluice
exec .build/release/sluice serve "$@"
