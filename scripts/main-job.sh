#!/usr/bin/env bash
# The README's first command: the built-in scenario suite against the built-in mock guest, host
# and VMMs. Failing scenarios' captures land in guestwire-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -- test --junit target/guestwire-junit.xml
