#!/bin/busybox sh
# /init of the real-VM rig's initramfs (built by scripts/vm-rig.sh). Loads the virtio modules,
# links /dev/virtio-ports/<name> (no udev here), then runs the guest agents the kernel command line
# names, and prints GUESTWIRE-READY on the console (the harness waits for it):
#   gw.serial=<port name>:<protocol>[:<extra guestwire guest flags, commas for spaces>]
#   gw.vsock=<port>:<protocol>[:<extra flags>]
# A serial agent serves the port through stdio, one host connection per run, restarted in a loop
# (while no host is connected the port reads EOF at once, see ../shared/VMLAB.md).
/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod "/mods/$m.ko" || echo "guestwire-init: insmod $m failed"; done
mkdir -p /dev/virtio-ports
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ -n "$(ls /sys/class/virtio-ports 2>/dev/null)" ] && break
    sleep 0.1
done
for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] || continue
    ln -sf "/dev/$(basename "$p")" "/dev/virtio-ports/$(cat "$p/name")"
done
serve_serial() { # name protocol flags
    while true; do
        /bin/guestwire guest --listen stdio --protocol "$2" --once $3 <>"/dev/virtio-ports/$1" >&0 2>/dev/console
        sleep 0.2
    done
}
for arg in $(cat /proc/cmdline); do
    case $arg in
    gw.serial=*)
        spec=${arg#gw.serial=}
        name=${spec%%:*}; rest=${spec#*:}; proto=${rest%%:*}; flags=
        [ "$rest" != "$proto" ] && flags=$(echo "${rest#*:}" | tr , ' ')
        serve_serial "$name" "$proto" "$flags" &
        ;;
    gw.vsock=*)
        spec=${arg#gw.vsock=}
        port=${spec%%:*}; rest=${spec#*:}; proto=${rest%%:*}; flags=
        [ "$rest" != "$proto" ] && flags=$(echo "${rest#*:}" | tr , ' ')
        /bin/guestwire guest --listen "vsock:any:$port" --protocol "$proto" $flags >/dev/console 2>&1 &
        ;;
    esac
done
sleep 0.5
echo "GUESTWIRE-READY ports: $(ls /dev/virtio-ports | tr '\n' ' ')" >/dev/console
while true; do sleep 3600; done
