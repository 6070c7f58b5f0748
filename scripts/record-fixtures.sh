#!/usr/bin/env bash
# Records the capture fixtures in fixtures/captures/ from live traffic: mock guests, mock VMMs and
# the real qemu-ga, each behind `guestwire tap --capture`, driven by `guestwire call` (or curl for
# the Cloud Hypervisor API). Nothing is typed by hand; rerun it after a wire change.
#
#   scripts/record-fixtures.sh            # uses target/release/guestwire (built if missing)
#   GUESTWIRE=path/to/guestwire scripts/record-fixtures.sh
#   ONLY=faults scripts/record-fixtures.sh  # one part: quantix, fcexec, volant, qga, ch-api, faults
#
# Deterministic where it can be: `--exec echo`, telemetry off, fixed fault seeds. Timestamps,
# uptimes and the order of concurrent events are whatever the run produced.
# Needs: qemu-ga (Debian qemu-guest-agent) for qga-session.pcap, curl for the ch-api captures.
# The quantix session needs several requests on one connection, which `guestwire call` does not
# make: examples/quantix_session.rs (the real host client) drives it.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${GUESTWIRE:-}
if [[ -z $BIN ]]; then
  BIN=${CARGO_TARGET_DIR:-target}/release/guestwire
  [[ -x $BIN ]] || cargo build --release --bin guestwire
fi
SESSION=${CARGO_TARGET_DIR:-target}/release/examples/quantix_session
want() { [[ -z ${ONLY:-} || ${ONLY} == "$1" ]]; }
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

# quantix: a whole session on one connection through the mock serial VMM (a virtio-serial port
# as QEMU exposes it), its in-process mock agent with a root holding `hostname` = "vm-42\n",
# echo exec and telemetry every 0.2 s: agent_ready, telemetry, ping, exec, file write and read,
# shutdown.
if want quantix; then
  [[ -x $SESSION ]] || cargo build --release --example quantix_session
  mkdir -p "$W/root"
  printf 'vm-42\n' >"$W/root/hostname"
  bg "$W/serial.sock" "$BIN" vmm serial --socket "$W/serial.sock" --guest quantix \
    --root "$W/root" --exec echo --telemetry 0.2
  SER=$LAST
  # The agent started before any host, so its first AgentReady waits in the port and a fresh
  # agent writes another when a host comes (docs/captures.md). A first host takes both and
  # leaves; the recorded one then sees the one fresh AgentReady of a clean start.
  call "unix:$W/serial.sock" --protocol quantix --attempts 3 ping
  tap "$OUT/quantix-session.pcap" "unix:$W/serial.sock" --port 1 --protocol quantix
  "$SESSION" "unix:$W/tap.sock" >>"$W/call.log" 2>&1
  stop "$TAP"
  stop "$SER"
  check "$OUT/quantix-session.pcap"
fi

# fcexec: a workload whose output comes back as log lines, over a Firecracker hybrid-vsock
# socket, the CONNECT/OK handshake inside the recorded payload (transparent unix -> unix tap).
if want fcexec; then
  bg "$W/fc.sock" "$BIN" vmm hvsock --socket "$W/fc.sock" --flavour firecracker --cid 3 \
    --guest-port 1024=fcexec --exec echo --telemetry 0
  FC=$LAST
  tap "$OUT/fcexec-run.pcap" "unix:$W/fc.sock" --port 1024 --protocol auto
  call "hvsock:$W/tap.sock:1024" --protocol fcexec --attempts 3 exec /bin/echo hello fixtures
  stop "$TAP"
  stop "$FC"
  check "$OUT/fcexec-run.pcap"
fi

# volant: one action (exec) over HTTP/1.1 on a hybrid-vsock port.
if want volant; then
  bg "$W/vo.sock" "$BIN" vmm hvsock --socket "$W/vo.sock" --flavour firecracker --cid 3 \
    --guest-port 8080=volant --exec echo --telemetry 0
  VO=$LAST
  tap "$OUT/volant-action.pcap" "unix:$W/vo.sock" --port 8080
  call "hvsock:$W/tap.sock:8080" --protocol volant --attempts 3 exec /bin/echo action
  stop "$TAP"
  stop "$VO"
  check "$OUT/volant-action.pcap"
fi

# qga: the real qemu-ga on a Unix socket (as QEMU's virtio-serial chardev would expose it).
if want qga; then
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
fi

# ch-api: the Cloud Hypervisor REST API through the tap, one request per curl connection.
if want ch-api; then
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
fi

# One capture per fault that shows in a capture. Stream and frame faults: a quantix ping through
# `tap --fault`. The faults the mock VMMs set up (issue #4) through their own `--fault`, the tap
# recording transparently in front of them.
if want faults; then
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

  # serial OUT SETTLE FAULT: the mock serial VMM's quantix agent (naive loop, telemetry every
  # 0.05 s) with FAULT; after SETTLE seconds a ping through the tap.
  serial() {
    local out=$1 settle=$2 spec=$3
    bg "$W/s.sock" "$BIN" vmm serial --socket "$W/s.sock" --guest quantix --loop naive \
      --exec echo --telemetry 0.05 --fault "$spec"
    local vmm=$LAST
    sleep "$settle"
    tap "$OUT/faults/$out.pcap" "unix:$W/s.sock" --port 1 --protocol quantix
    call "unix:$W/tap.sock" --protocol quantix --timeout 2 --attempts 1 ping
    stop "$TAP"
    stop "$vmm"
    check "$OUT/faults/$out.pcap"
  }
  # The agent writes agent_ready and telemetry before any host is connected: the first write
  # is taken with no host, the naive loop then blocks and stops; the ping goes unanswered.
  serial guest_before_host 1 guest_before_host
  # The VMM's own client holds the single-client port: the host's ping reaches nobody.
  serial stale_client 1 stale_client
  # stale_socket: the socket file exists and nothing listens, so the tap's upstream connect is
  # refused before a byte moves and the capture stays empty: no fixture (docs/captures.md).

  # vm_pause: the hybrid-vsock VM paused for 300 ms: the OK line (and everything) waits.
  bg "$W/fc.sock" "$BIN" vmm hvsock --socket "$W/fc.sock" --flavour firecracker --cid 3 \
    --guest-port 1024=fcexec --exec echo --telemetry 0 --fault 'vm_pause:duration=300ms'
  FC=$LAST
  tap "$OUT/faults/vm_pause.pcap" "unix:$W/fc.sock" --port 1024 --protocol auto
  call "hvsock:$W/tap.sock:1024" --protocol fcexec --attempts 1 exec /bin/echo paused
  stop "$TAP"
  stop "$FC"
  check "$OUT/faults/vm_pause.pcap"

  # malformed:bad_json: the fcexec agent's result is not JSON (the VMM's fault, on the guest's
  # side of the muxer, so the tap records the bad bytes as they reach the host).
  bg "$W/fc.sock" "$BIN" vmm hvsock --socket "$W/fc.sock" --flavour firecracker --cid 3 \
    --guest-port 1024=fcexec --exec echo --telemetry 0 --fault 'malformed:bad_json,on_type=result'
  FC=$LAST
  tap "$OUT/faults/malformed-bad_json.pcap" "unix:$W/fc.sock" --port 1024 --protocol auto
  call "hvsock:$W/tap.sock:1024" --protocol fcexec --attempts 1 --timeout 3 exec /bin/echo bad json
  stop "$TAP"
  stop "$FC"
  check "$OUT/faults/malformed-bad_json.pcap"

  # malformed:split_handshake and malformed:no_newline: the host's CONNECT line as the tap
  # forwards it to a Firecracker-style muxer (in two writes; without its newline). The tap's
  # fault, so that the capture holds the bytes the VMM got.
  for v in split_handshake no_newline; do
    bg "$W/fc.sock" "$BIN" vmm hvsock --socket "$W/fc.sock" --flavour firecracker --cid 3 \
      --guest-port 1024=fcexec --exec echo --telemetry 0
    FC=$LAST
    tap "$OUT/faults/malformed-$v.pcap" "unix:$W/fc.sock" --port 1024 --protocol fcexec \
      --seed 1 --fault "malformed:$v"
    call "hvsock:$W/tap.sock:1024" --protocol fcexec --attempts 1 --connect-timeout 2 \
      exec /bin/echo "$v"
    stop "$TAP"
    stop "$FC"
    check "$OUT/faults/malformed-$v.pcap"
  done

  # ch_shutdown_wedge (cloud-hypervisor#816): the API traffic through the tap on the API socket.
  # vmm.shutdown on the paused VM is never answered, nor is the vmm.ping after it (curl gives up
  # after 1 s each).
  bg "$W/ch.sock" "$BIN" vmm ch-api --api-socket "$W/ch.sock" --exec echo --telemetry 0 \
    --fault ch_shutdown_wedge
  CH=$LAST
  tap "$OUT/faults/ch_shutdown_wedge.pcap" "unix:$W/ch.sock" --port 0 --protocol ch-api
  wcfg='{"payload":{"kernel":"/boot/vmlinux","cmdline":"console=hvc0"},"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":536870912}}'
  capi() {
    curl -sS --max-time "$4" --unix-socket "$W/tap.sock" -X "$1" \
      -H 'Content-Type: application/json' ${2:+--data "$2"} "http://localhost/api/v1/$3" \
      >>"$W/call.log" 2>&1 || true
  }
  capi PUT "$wcfg" vm.create 10
  capi PUT "" vm.boot 10
  capi PUT "" vm.pause 10
  capi PUT "" vmm.shutdown 1
  capi GET "" vmm.ping 1
  stop "$TAP"
  stop "$CH"
  check "$OUT/faults/ch_shutdown_wedge.pcap"
fi

echo "record-fixtures: done (logs were in $W)"
