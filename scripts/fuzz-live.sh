#!/usr/bin/env bash
# `guestwire fuzz` against live peers on a CI budget: the real qemu-ga (dangerous commands
# blocked), the mock quantix agent on a Unix socket and the mock fcexec agent behind a
# hybrid-vsock socket. (Not the quantix agent behind the mock virtio-serial port: there a cut-short
# frame stalls the agent for the next client, as with the real reader; docs/fuzzing.md.) Any finding fails the run; its pcap and JSON stay in
# target/fuzz-findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
cargo build --release --quiet --bin guestwire
GW=${CARGO_TARGET_DIR:-target}/release/guestwire
W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 200); do [[ -S $1 ]] && return 0; sleep 0.05; done; echo "no $1" >&2; return 1; }
OUT=target/fuzz-findings

QGA=$(command -v qemu-ga || echo /usr/sbin/qemu-ga)
BLOCK=guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,guest-fsfreeze-freeze,guest-set-user-password,guest-exec,guest-file-open,guest-set-vcpus,guest-set-memory-blocks
mkdir -p "$W/qga"
"$QGA" -m unix-listen -p "$W/qga.sock" -t "$W/qga" -b "$BLOCK" &
PIDS+=($!)
wait_sock "$W/qga.sock"
"$GW" fuzz --connect "unix:$W/qga.sock" --protocol qga --runs "$RUNS" --seed 1 --out "$OUT/qga"

"$GW" guest --listen "unix:$W/direct.sock" --protocol quantix --exec echo >/dev/null &
PIDS+=($!)
wait_sock "$W/direct.sock"
"$GW" fuzz --connect "unix:$W/direct.sock" --protocol quantix --runs "$RUNS" --seed 1 --out "$OUT/quantix"

"$GW" vmm hvsock --socket "$W/v.sock" --guest-port 1024=fcexec --exec echo >/dev/null &
PIDS+=($!)
wait_sock "$W/v.sock"
"$GW" fuzz --connect "hvsock:$W/v.sock:1024" --protocol fcexec --runs "$RUNS" --seed 1 --out "$OUT/fcexec"
