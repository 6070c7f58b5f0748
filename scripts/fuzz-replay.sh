#!/usr/bin/env bash
# Builds every fuzz target on the stable toolchain (no sanitizer) and replays every committed
# corpus and crash file through every target (exit 77 from a target means a crash). With
# `--timed SECS`, then fuzzes each target for SECS seconds from its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
timed=0
if [ "${1:-}" = "--timed" ]; then timed=${2:-5}; fi
targets=$(cargo fuzz list --fuzz-dir fuzz)
cargo fuzz build -s none --fuzz-dir fuzz
# cargo fuzz builds into $CARGO_TARGET_DIR when it is set, else fuzz/target.
bin=${CARGO_TARGET_DIR:-fuzz/target}/x86_64-unknown-linux-gnu/release
inputs=()
for d in fixtures/corpus/* fixtures/crashes; do
  [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && inputs+=("$d")
done
for t in $targets; do
  echo "replay: $t over ${#inputs[@]} folders"
  if ! "$bin/$t" "${inputs[@]}" -runs=0 >"/tmp/replay-$t.log" 2>&1; then
    tail -n 40 "/tmp/replay-$t.log"
    echo "FAILED: $t crashed on a committed input"
    exit 1
  fi
  tail -n 1 "/tmp/replay-$t.log"
done
if [ "$timed" -gt 0 ]; then
  for t in $targets; do
    work=$(mktemp -d)
    seed="fixtures/corpus/$t"
    [ -d "$seed" ] || seed=""
    echo "fuzz: $t for ${timed}s"
    if ! "$bin/$t" "$work" $seed -max_total_time="$timed" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts-$t-" >"/tmp/fuzz-$t.log" 2>&1; then
      tail -n 60 "/tmp/fuzz-$t.log"
      echo "FAILED: $t found a crash; the input is in fuzz/artifacts-$t-*: add it to fixtures/crashes/ with the fix"
      exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "/tmp/fuzz-$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "/tmp/fuzz-$t.log")
    cov=$(grep -oE 'cov: [0-9]+' "/tmp/fuzz-$t.log" | tail -n 1)
    echo "  $t: ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}"
    rm -rf "$work"
  done
fi
