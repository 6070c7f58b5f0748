#!/usr/bin/env bash
# Sets up the real-VM rig (issue 9) in a cache folder, idempotently, without changing the installed
# system: Debian's QEMU 7.2 and 6.1 kernel unpacked with `apt-get download` + `dpkg-deb -x` (an
# `apt-get install qemu-system-x86` fails on these machines, see ../shared/VMLAB.md), busybox-static,
# vhost-device-vsock (cargo install --root into the cache), a statically linked guestwire, and a
# busybox initramfs whose init loads the virtio modules, makes /dev/virtio-ports links and runs the
# guest agents that the kernel command line asks for (see tests/support/vm.rs).
#
# Usage: scripts/vm-rig.sh [--print-env]
#   GUESTWIRE_VM_CACHE  cache folder (default ~/.cache/guestwire-vm)
#   CARGO_TARGET_DIR    where the static guestwire is built (default ./target)
# Prints `GUESTWIRE_VM_DIR=<cache>` last; the test harness reads <cache>/rig.env.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${GUESTWIRE_VM_CACHE:-$HOME/.cache/guestwire-vm}
mkdir -p "$cache/debs" "$cache/root" "$cache/bin"
started=$(date +%s)
say() { printf 'vm-rig (%ss): %s\n' "$(($(date +%s) - started))" "$*" >&2; }

# 1. Debian packages: QEMU (the list `apt-get install -s` would install), the kernel, busybox-static.
if [ ! -e "$cache/debs/.done" ]; then
    say "downloading Debian packages"
    kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1/ {print $2; exit}')
    [ -n "$kernel_pkg" ] || { echo "vm-rig: no linux-image-6.1 package found" >&2; exit 1; }
    mapfile -t pkgs < <(apt-get install -s --no-install-recommends qemu-system-x86 qemu-utils/bookworm 2>/dev/null |
        awk '/^Inst / {v=$3; if (v ~ /^\[/) v=$4; gsub(/[()]/, "", v); print $2 "=" v}')
    [ "${#pkgs[@]}" -gt 0 ] || { echo "vm-rig: apt-get install -s listed no packages" >&2; exit 1; }
    (cd "$cache/debs" && apt-get download -q "${pkgs[@]}" "$kernel_pkg" busybox-static >/dev/null)
    touch "$cache/debs/.done"
fi
if [ ! -e "$cache/root/.done" ]; then
    say "unpacking packages"
    for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$cache/root"; done
    touch "$cache/root/.done"
fi
qemu="$cache/root/usr/bin/qemu-system-x86_64"
[ -x "$qemu" ] || { echo "vm-rig: $qemu missing after unpacking" >&2; exit 1; }
kver=$(basename "$(ls -d "$cache"/root/lib/modules/6.1.* | head -1)")
bzimage="$cache/root/boot/vmlinuz-$kver"

# 1b. qemu-ga for inside the guest: Debian's package, with the shared libraries it needs copied from
# this machine (ldd resolves them; `.ci/run` installs qemu-guest-agent, which brings them).
qga_root="$cache/qga-root"
if [ ! -e "$qga_root/.done" ]; then
    say "downloading qemu-guest-agent"
    mkdir -p "$cache/qga-debs" "$qga_root"
    (cd "$cache/qga-debs" && apt-get download -q qemu-guest-agent >/dev/null)
    for deb in "$cache"/qga-debs/*.deb; do dpkg-deb -x "$deb" "$qga_root"; done
    touch "$qga_root/.done"
fi
qga_bin="$qga_root/usr/sbin/qemu-ga"
[ -x "$qga_bin" ] || qga_bin="$qga_root/usr/bin/qemu-ga"
[ -x "$qga_bin" ] || { echo "vm-rig: qemu-ga missing from the qemu-guest-agent package" >&2; exit 1; }
if ldd "$qga_bin" | grep -q 'not found'; then
    echo "vm-rig: qemu-ga's libraries are not all on this machine (apt-get install qemu-guest-agent):" >&2
    ldd "$qga_bin" >&2
    exit 1
fi

# 2. An uncompressed vmlinux (PVH boot: ~3 s to init instead of ~6 s); falls back to the bzImage.
kernel="$cache/vmlinux-$kver"
if [ ! -e "$kernel" ]; then
    say "extracting vmlinux from $bzimage"
    python3 - "$bzimage" "$kernel" <<'PY' || true
import gzip, lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
def tries():
    for magic, fn in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                      (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b))):
        at = data.find(magic)
        while at >= 0:
            yield fn, data[at:]
            at = data.find(magic, at + 1)
for fn, blob in tries():
    try:
        out = fn(blob)
    except Exception:
        continue
    if out[:4] == b"\x7fELF":
        open(sys.argv[2], "wb").write(out)
        sys.exit(0)
sys.exit(1)
PY
    [ -e "$kernel" ] || { say "no vmlinux payload found, using the bzImage"; kernel=$bzimage; }
fi

# 3. vhost-device-vsock from crates.io, into the cache.
vhu="$cache/vhost/bin/vhost-device-vsock"
if [ ! -x "$vhu" ]; then
    say "cargo install vhost-device-vsock (about 2 minutes)"
    CARGO_TARGET_DIR="$cache/vhu-build" cargo install -q --locked -j 2 --root "$cache/vhost" vhost-device-vsock
fi

# 4. guestwire, statically linked (rebuilt when the sources changed; cargo decides).
say "building a static guestwire"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR="$target_dir" \
    cargo build -q -j 2 --release --target x86_64-unknown-linux-gnu --bin guestwire
gw="$target_dir/x86_64-unknown-linux-gnu/release/guestwire"

# 5. The initramfs: busybox, guestwire, the modules, and an init. Rebuilt every run (≈ 1 s).
say "building the initramfs"
stage="$cache/initramfs"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,mods}
cp "$cache/root/bin/busybox" "$stage/bin/busybox"
strip -o "$stage/bin/guestwire" "$gw"
mkdir -p "$stage/usr/bin"
cp "$qga_bin" "$stage/usr/bin/qemu-ga"
for lib in $(ldd "$qga_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
done
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console \
    vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
    ko=$(find "$cache/root/lib/modules/$kver" -name "$m.ko*" | head -1)
    [ -n "$ko" ] || { echo "vm-rig: module $m not found" >&2; exit 1; }
    case $ko in
    *.xz) xz -dc "$ko" >"$stage/mods/$m.ko" ;;
    *.zst) zstd -qdc "$ko" >"$stage/mods/$m.ko" ;;
    *) cp "$ko" "$stage/mods/$m.ko" ;;
    esac
    echo "$m" >>"$stage/mods/order"
done
cp "$repo/scripts/vm-init.sh" "$stage/init"
chmod +x "$stage/init"
python3 - "$stage" "$cache/initramfs.cpio" <<'PY'
# A newc cpio writer (no cpio binary on these machines).
import os, sys
root, out = sys.argv[1], sys.argv[2]
ino = [1]
def entry(f, name, st, data):
    hdr = "070701" + "".join("%08x" % v for v in (
        ino[0], st.st_mode if st else 0, 0, 0, st.st_nlink if st else 1, 0, len(data),
        0, 0, 0, 0, len(name) + 1, 0))
    ino[0] += 1
    f.write(hdr.encode() + name.encode() + b"\0")
    f.write(b"\0" * ((4 - (110 + len(name) + 1) % 4) % 4))
    f.write(data)
    f.write(b"\0" * ((4 - len(data) % 4) % 4))
with open(out, "wb") as f:
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs) + sorted(files):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            data = b""
            if os.path.islink(p):
                data = os.readlink(p).encode()
            elif os.path.isfile(p):
                data = open(p, "rb").read()
            entry(f, os.path.relpath(p, root), st, data)
    entry(f, "TRAILER!!!", None, b"")
PY

cat >"$cache/rig.env" <<EOF
QEMU=$qemu
QEMU_LIB=$cache/root/usr/lib/x86_64-linux-gnu
QEMU_DATA=$cache/root/usr/share/qemu:$cache/root/usr/share/seabios:$cache/root/usr/lib/ipxe/qemu
KERNEL=$kernel
INITRD=$cache/initramfs.cpio
VHOST_DEVICE_VSOCK=$vhu
EOF
say "ready"
echo "GUESTWIRE_VM_DIR=$cache"
