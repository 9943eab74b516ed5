#!/usr/bin/env python3
"""Memory per idle FastCGI connection.

    bench/idle.py [CONNECTIONS] [--tcp]     (default 10000, a unix socket)

Starts springfield on a unix socket (--tcp: on 127.0.0.1), opens
CONNECTIONS connections to it, sends one flanders request with
FCGI_KEEP_CONN on each (so every connection has been used, then sits
idle), and reads springfield's resident memory (VmRSS) before and after.
Prints the growth per connection.  The aim: under 8 KiB each.  It also
prints how much the kernel's slab grew meanwhile (/proc/meminfo: Slab),
per connection: both ends' sockets, files and epoll entries, which the
kernel holds beside springfield's own memory (the machine's other
activity moves it too: read it as an order of magnitude).
"""
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def record(rtype, rid, content=b""):
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), 0) + content


def pairs(d):
    out = b""
    for k, v in d.items():
        k, v = k.encode(), v.encode()
        out += bytes([len(k), len(v)]) + k + v  # all short here
    return out


REQUEST = (record(1, 1, struct.pack(">HB5x", 1, 1))  # RESPONDER, KEEP_CONN
           + record(4, 1, pairs({"REQUEST_METHOD": "GET",
                                 "SCRIPT_NAME": "/api/v1/flanders"}))
           + record(4, 1) + record(5, 1))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def slab_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    raise RuntimeError("no Slab in /proc/meminfo")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(s):
    data = b""
    while b"\x01\x03\x00\x01" not in data:  # END_REQUEST for id 1
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before the answer")
        data += chunk
    return data


def main():
    args = [a for a in sys.argv[1:] if a != "--tcp"]
    tcp = "--tcp" in sys.argv[1:]
    n = int(args[0]) if args else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    run = tempfile.mkdtemp(prefix="springfield-idle.")
    sock_path = os.path.join(run, "sf.sock")
    if tcp:
        address, family = ("127.0.0.1", free_port()), socket.AF_INET
        listen = "%s:%d" % address
    else:
        address, family = sock_path, socket.AF_UNIX
        listen = "unix:" + sock_path
    sf = subprocess.Popen([os.path.join(REPO, "springfield"), "--listen", listen,
                           "--no-access-log", "--max-conns", str(n + 100)],
                          stderr=open(os.path.join(run, "sf.log"), "w"))
    conns = []
    try:
        for _ in range(100):
            try:
                warm = socket.socket(family)
                warm.connect(address)
                break
            except OSError:
                warm.close()
                time.sleep(0.05)
        warm.sendall(REQUEST)
        read_response(warm)
        warm.close()
        time.sleep(0.2)
        before, slab_before = rss_kib(sf.pid), slab_kib()
        for i in range(n):
            s = socket.socket(family)
            s.connect(address)
            s.sendall(REQUEST)
            read_response(s)
            conns.append(s)
        time.sleep(0.5)
        after, slab_after = rss_kib(sf.pid), slab_kib()
        if sf.poll() is not None:
            raise RuntimeError("springfield died")
        per = (after - before) * 1024 / n
        print("%d idle FastCGI connections over %s (each used once, FCGI_KEEP_CONN)"
              % (n, "TCP 127.0.0.1" if tcp else "a unix socket"))
        print("springfield VmRSS: %d KiB before, %d KiB after" % (before, after))
        print("per connection: %.0f bytes (aim: under 8192)" % per)
        print("kernel slab: %d KiB before, %d KiB after: %.0f bytes per connection, both ends"
              % (slab_before, slab_after, (slab_after - slab_before) * 1024 / n))
    finally:
        for s in conns:
            s.close()
        sf.terminate()
        sf.wait(10)


if __name__ == "__main__":
    main()
