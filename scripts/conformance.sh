#!/usr/bin/env bash
# Runs the conformance scenarios of the built-in suite against real implementations: the real
# qemu-ga (Debian qemu-guest-agent) as a qga agent on a virtio-serial port, and the examples'
# quantix agent and host client. Each must pass every scenario of its side and protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin guestwire --example quantix_agent --example quantix_host
T=${CARGO_TARGET_DIR:-target}/release
GW=$T/guestwire
QGA=$(command -v qemu-ga || echo /usr/sbin/qemu-ga)
# Commands a test agent must never run on this machine.
BLOCK=guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,guest-fsfreeze-freeze,guest-set-user-password
"$GW" test --protocol qga --guest-cmd "$QGA -m virtio-serial -p {device} -t {dir} -b $BLOCK" \
  --junit target/conformance-qga.xml
"$GW" test --protocol quantix --guest-cmd "$T/examples/quantix_agent {device}" \
  --junit target/conformance-quantix-agent.xml
"$GW" test --protocol quantix --host-cmd "$T/examples/quantix_host {socket} {op} {args}" \
  --junit target/conformance-quantix-host.xml
