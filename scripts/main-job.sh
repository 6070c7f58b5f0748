#!/usr/bin/env bash
# The README's first command: decode a recorded agent session (until the scenario suite lands).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -- decode fixtures/streams/quantix-to-host.bin
