#!/usr/bin/env bash
# Installs what guestwire's tests need on a fresh machine. Idempotent: skips what is there.
set -euo pipefail
need_apt=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  for pkg in "${need_apt[@]}"; do
    if [ "$pkg" = tshark ]; then
      # wireshark-common asks whether non-root users may capture; answer no, without a prompt.
      echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
    fi
  done
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked --quiet
