#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, with AddressSanitizer) and runs each for a while on its
# seed corpus. Fails when a fuzzer finds a crash; the crashing input is left in .fuzz-out/.
#   scripts/fuzz.sh            # 30 s per target (what .ci/run does)
#   scripts/fuzz.sh 1800 -jobs=2 -workers=2   # longer, in parallel
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
echo "==> building the fuzzers (release, -sanitize=fuzzer,address)"
# `--sanitize` alone instruments only the fuzz package's own targets; the code under test lives in
# the dependency `sluice`, so the flags also go to every module through -Xswiftc (without this
# libFuzzer sees a few hundred edges and its guidance is blind).
out=.fuzz-out
mkdir -p "$out"
# A failed build must stop here: the fuzzers of an earlier build would otherwise run (and pass)
# against code that is no longer there.
if ! swift build -c release --package-path fuzz --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address \
  -Xswiftc -sanitize=fuzzer,address > "$out/build.log" 2>&1; then
  grep -E "error" "$out/build.log" | head -20
  echo "the fuzzers did not build (log: $out/build.log)"; exit 1
fi
grep -E "Compiling Fuzz|Build complete" "$out/build.log" || true
test -x .build-fuzz/release/FuzzParser -a -x .build-fuzz/release/FuzzCommands
for target in FuzzParser FuzzCommands; do
  corpus="fuzz/corpus/$(echo "$target" | sed 's/Fuzz//' | tr 'A-Z' 'a-z')"
  work="$out/$target"
  mkdir -p "$work"
  echo "==> $target for ${seconds}s (seeds: $corpus)"
  # New interesting inputs go to $work; the seeds in the repository are read only.
  ASAN_OPTIONS=detect_leaks=0 .build-fuzz/release/$target "$work" "$corpus" -max_total_time="$seconds" \
    -max_len=4096 -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$out/$target-" -print_final_stats=1 "$@" 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|INITED)|stat::|ERROR|SUMMARY|Deadly|crash|timeout" || true
  if compgen -G "$out/$target-*" >/dev/null; then
    echo "$target found a failure (input and log above):"; ls "$out/$target-"*; exit 1
  fi
done
echo "==> fuzzers found nothing"
