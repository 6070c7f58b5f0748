#!/bin/busybox sh
# /init of the real-VM rig's initramfs (built by scripts/vm-rig.sh). Loads the virtio modules,
# links /dev/virtio-ports/<name> (no udev here), then runs the guest programs the kernel command line
# names, and prints GUESTWIRE-READY on the console (the harness waits for it):
#   gw.serial=<port name>:<protocol>[:<extra guestwire guest flags, commas for spaces>]
#       `guestwire guest --listen serial:/dev/virtio-ports/<name>`: one session per host client,
#       waiting while no host is connected (the port reads EOF at once then, ../shared/VMLAB.md)
#   gw.vsock=<port>:<protocol>[:<extra flags>]   `guestwire guest --listen vsock:any:<port>`
#   gw.qga=<port name>        the real qemu-ga on that port (Debian's, with its libraries)
#   gw.writer=<port name>:<N> writes `seq 1 N` to the port in 4 KiB writes from boot on (before any
#       host), printing GW-WRITING <name> before and GW-WROTE <name> after on the console
#   gw.reader=<port name>[:<delay s>]  after the delay (default 0) prints GW-READING <name>, reads the
#       port until end of file, then prints GW-EOF <name> <bytes read>
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
write_port() { # name count
    seq 1 "$2" >"/tmp/$1.data"
    echo "GW-WRITING $1" >/dev/console
    dd if="/tmp/$1.data" of="/dev/virtio-ports/$1" bs=4096 2>/dev/null
    echo "GW-WROTE $1" >/dev/console
}
read_port() { # name delay
    sleep "$2"
    echo "GW-READING $1" >/dev/console
    n=$(cat "/dev/virtio-ports/$1" | wc -c)
    n=$((n))
    echo "GW-EOF $1 $n" >/dev/console
}
for arg in $(cat /proc/cmdline); do
    case $arg in
    gw.serial=*)
        spec=${arg#gw.serial=}
        name=${spec%%:*}; rest=${spec#*:}; proto=${rest%%:*}; flags=
        [ "$rest" != "$proto" ] && flags=$(echo "${rest#*:}" | tr , ' ')
        /bin/guestwire guest --listen "serial:/dev/virtio-ports/$name" --protocol "$proto" $flags >/dev/console 2>&1 &
        ;;
    gw.qga=*)
        mkdir -p /run/qga
        qemu-ga -m virtio-serial -p "/dev/virtio-ports/${arg#gw.qga=}" -t /run/qga >/dev/console 2>&1 &
        ;;
    gw.writer=*)
        spec=${arg#gw.writer=}
        write_port "${spec%%:*}" "${spec#*:}" &
        ;;
    gw.reader=*)
        spec=${arg#gw.reader=}
        delay=0
        [ "${spec#*:}" != "$spec" ] && delay=${spec#*:}
        read_port "${spec%%:*}" "$delay" &
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
