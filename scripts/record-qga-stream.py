#!/usr/bin/env python3
"""Records a session with a real qemu-ga (Debian package qemu-guest-agent) on a Unix socket.

Writes the two byte streams exactly as they crossed the socket:
  fixtures/streams/qga-to-guest.bin  (what the host sent)
  fixtures/streams/qga-to-host.bin   (what qemu-ga answered)
The session covers: a 0xFF flush, guest-sync-delimited, guest-ping, guest-info, an unknown
command, garbage, and a request preceded by a stray 0xFF (VMLAB.md's behaviours).
Run from the repository root: python3 scripts/record-qga-stream.py
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

OUT = "fixtures/streams"


def main():
    qga = shutil.which("qemu-ga") or "/usr/sbin/qemu-ga"
    work = tempfile.mkdtemp(prefix="gw-qga-")
    sock_path = os.path.join(work, "qga.sock")
    proc = subprocess.Popen(
        [qga, "-m", "unix-listen", "-p", sock_path, "-t", work, "-l", os.path.join(work, "log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock_path):
            if time.time() > deadline:
                sys.exit("qemu-ga did not create its socket")
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(sock_path)
        sent, got = bytearray(), bytearray()

        def send(data):
            sent.extend(data)
            s.sendall(data)

        def recv_until(pred):
            end = time.time() + 5
            while not pred(got) and time.time() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)

        def request(cmd, args=None, prefix=b""):
            msg = {"execute": cmd}
            if args is not None:
                msg["arguments"] = args
            before = got.count(b"\n")
            send(prefix + json.dumps(msg).encode() + b"\n")
            want = before + (2 if prefix else 1)
            recv_until(lambda g: g.count(b"\n") >= want)

        send(b"\xff")
        request("guest-sync-delimited", {"id": 4242})
        request("guest-ping")
        request("guest-sync", {"id": 99})
        request("guest-info")
        request("guest-no-such-command")
        before = got.count(b"\n")
        send(b"this is not json\n")
        recv_until(lambda g: g.count(b"\n") > before)
        request("guest-ping", prefix=b"\xff")
        s.close()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "qga-to-guest.bin"), "wb") as f:
        f.write(sent)
    with open(os.path.join(OUT, "qga-to-host.bin"), "wb") as f:
        f.write(got)
    print(f"recorded {len(sent)} bytes to the guest, {len(got)} bytes to the host")


if __name__ == "__main__":
    main()
