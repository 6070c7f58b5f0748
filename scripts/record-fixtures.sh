#!/usr/bin/env bash
# Records the capture fixtures in fixtures/captures/ from live traffic: mock guests, mock VMMs and
# the real qemu-ga, each behind `guestwire tap --capture`, driven by `guestwire call` (or curl for
# the Cloud Hypervisor API). Nothing is typed by hand; rerun it after a wire change.
#
#   scripts/record-fixtures.sh            # uses target/release/guestwire (built if missing)
#   GUESTWIRE=path/to/guestwire scripts/record-fixtures.sh
#
# Deterministic where it can be: `--exec echo`, telemetry off, fixed fault seeds. Timestamps,
# uptimes and the order of concurrent events are whatever the run produced.
# Needs: qemu-ga (Debian qemu-guest-agent) for qga-session.pcap, curl for ch-api-session.pcap.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${GUESTWIRE:-}
if [[ -z $BIN ]]; then
  BIN=${CARGO_TARGET_DIR:-target}/release/guestwire
  [[ -x $BIN ]] || cargo build --release --bin guestwire
fi
OUT=fixtures/captures
mkdir -p "$OUT/faults"
W=$(mktemp -d)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [[ -n ${KEEP:-} ]] || rm -rf "$W"
}
trap cleanup EXIT

wait_sock() {
  for _ in $(seq 400); do
    [[ -S $1 ]] && return 0
    sleep 0.05
  done
  echo "record-fixtures: $1 never appeared" >&2
  return 1
}

# bg SOCKET CMD...: runs CMD in the background and waits for SOCKET; its PID is in $LAST.
bg() {
  local sock=$1
  shift
  rm -f "$sock"
  "$@" >>"$W/bg.log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
  wait_sock "$sock"
}

# stop PID: SIGINT (the tap flushes and exits; mocks exit), then reap.
stop() {
  kill -INT "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# tap OUT UPSTREAM [ARGS...]: a capturing tap on $W/tap.sock; its PID is in $TAP.
tap() {
  local out=$1 up=$2
  shift 2
  bg "$W/tap.sock" "$BIN" tap --listen "unix:$W/tap.sock" --upstream "$up" \
    --capture "$out" --quiet "$@"
  TAP=$LAST
}

call() {
  "$BIN" call --connect "$1" "${@:2}" >>"$W/call.log" 2>&1 || true
}

check() {
  local status=0
  "$BIN" decode "$1" >"$W/decode.txt" 2>&1 || status=$?
  printf '%-48s %6s B  %s  (decode exit %s)\n' "$1" "$(stat -c %s "$1")" \
    "$(grep -m1 '^summary' "$W/decode.txt" || echo '?')" "$status"
}

# fcexec: a workload whose output comes back as log lines, over a Firecracker hybrid-vsock
# socket, the CONNECT/OK handshake inside the recorded payload (transparent unix -> unix tap).
bg "$W/fc.sock" "$BIN" vmm hvsock --socket "$W/fc.sock" --flavour firecracker --cid 3 \
  --guest-port 1024=fcexec --exec echo --telemetry 0
FC=$LAST
tap "$OUT/fcexec-run.pcap" "unix:$W/fc.sock" --port 1024 --protocol auto
call "hvsock:$W/tap.sock:1024" --protocol fcexec --attempts 3 exec /bin/echo hello fixtures
stop "$TAP"
stop "$FC"
check "$OUT/fcexec-run.pcap"

# volant: one action (exec) over HTTP/1.1 on a hybrid-vsock port.
bg "$W/vo.sock" "$BIN" vmm hvsock --socket "$W/vo.sock" --flavour firecracker --cid 3 \
  --guest-port 8080=volant --exec echo --telemetry 0
VO=$LAST
tap "$OUT/volant-action.pcap" "unix:$W/vo.sock" --port 8080
call "hvsock:$W/tap.sock:8080" --protocol volant --attempts 3 exec /bin/echo action
stop "$TAP"
stop "$VO"
check "$OUT/volant-action.pcap"

# qga: the real qemu-ga on a Unix socket (as QEMU's virtio-serial chardev would expose it).
if command -v qemu-ga >/dev/null || [[ -x /usr/sbin/qemu-ga ]]; then
  QGA=$(command -v qemu-ga || echo /usr/sbin/qemu-ga)
  mkdir -p "$W/qga-state"
  bg "$W/qga.sock" "$QGA" -m unix-listen -p "$W/qga.sock" -t "$W/qga-state" -f "$W/qga.pid"
  QP=$LAST
  tap "$OUT/qga-session.pcap" "unix:$W/qga.sock" --port 1 --protocol qga
  call "unix:$W/tap.sock" --protocol qga --attempts 3 raw '{"execute":"guest-sync-delimited","arguments":{"id":4242}}'
  call "unix:$W/tap.sock" --protocol qga --attempts 3 ping
  call "unix:$W/tap.sock" --protocol qga --attempts 3 info
  stop "$TAP"
  kill "$QP" 2>/dev/null || true
  wait "$QP" 2>/dev/null || true
  check "$OUT/qga-session.pcap"
else
  echo "record-fixtures: qemu-ga not installed; qga-session.pcap not recorded" >&2
fi

# ch-api: the Cloud Hypervisor REST API through the tap, one request per curl connection.
bg "$W/ch.sock" "$BIN" vmm ch-api --api-socket "$W/ch.sock" --exec echo --telemetry 0
CH=$LAST
tap "$OUT/ch-api-session.pcap" "unix:$W/ch.sock" --port 0 --protocol ch-api
api() {
  curl -sS --max-time 10 --unix-socket "$W/tap.sock" -X "$1" \
    -H 'Content-Type: application/json' ${2:+--data "$2"} "http://localhost/api/v1/$3" \
    >>"$W/call.log" 2>&1 || true
}
cfg='{"payload":{"kernel":"/boot/vmlinux","cmdline":"console=hvc0"},"cpus":{"boot_vcpus":2,"max_vcpus":2},"memory":{"size":1073741824},"vsock":{"cid":3,"socket":"/tmp/guestwire-fixture-vsock.sock"}}'
api PUT "$cfg" vm.create
api PUT "" vm.boot
api PUT "" vm.pause
api PUT "" vm.resume
api GET "" vm.info
api PUT "" vm.shutdown
stop "$TAP"
stop "$CH"
check "$OUT/ch-api-session.pcap"

# One capture per fault that shows in a capture: a quantix ping through `tap --fault`.
bg "$W/q.sock" "$BIN" guest --listen "unix:$W/q.sock" --protocol quantix --exec echo --telemetry 0
Q=$LAST
fault() {
  local name=$1 spec=$2
  tap "$OUT/faults/$name.pcap" "unix:$W/q.sock" --protocol quantix --seed 1 --fault "$spec"
  call "unix:$W/tap.sock" --protocol quantix --timeout 1 --attempts 1 ping
  stop "$TAP"
  check "$OUT/faults/$name.pcap"
}
fault latency 'latency:latency=20ms'
fault slicer 'slicer'
fault limit_data 'limit_data:bytes=100,direction=to_host'
fault reset_mid_stream 'reset_mid_stream:direction=to_host'
fault reset_peer 'reset_peer'
fault drop_frame 'drop_frame:on_type=pong'
fault duplicate_frame 'duplicate_frame:on_type=pong'
fault reorder 'reorder:direction=to_host'
fault agent_hang 'agent_hang'
fault agent_crash 'agent_crash'
fault timeout 'timeout:timeout=200ms'
fault slow_close 'slow_close:delay=50ms'
for v in bad_magic oversize_length zero_length truncated bad_protobuf unknown_type garbage; do
  fault "malformed-$v" "malformed:$v,on_type=pong"
done
stop "$Q"
echo "record-fixtures: done (logs were in $W)"
