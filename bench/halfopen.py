#!/usr/bin/env python3
"""Half-open handshakes against `taojie serve exec` (issue 14): opens N connections, each
from a loopback address of its own (127.5.0.0/16), sends the first bytes of a handshake
answer and nothing more, then times a real `taojie exec -- true` and reads the server's
resident memory. Loopback only; bounded in count (N <= 15000) and time (the client gets 15 s).

    bench/halfopen.py --bin target/release/taojie --n 12000 [-- SERVER FLAGS...]
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    n = min(a.n, 15000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp()
    key = os.path.join(tmp, "k")
    with open(key, "w") as f:
        f.write("5a" * 32 + "\n")
    os.chmod(key, 0o600)
    server = subprocess.Popen(
        [a.bin, "serve", "exec", "--listen", "127.0.0.1:0", "--key", key, *a.extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = server.stdout.readline().split()[2]
        host, port = addr.rsplit(":", 1)
        before = rss_kib(server.pid)
        socks, failed = [], 0
        start = time.monotonic()
        for i in range(n):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.bind((f"127.5.{i // 250}.{i % 250 + 1}", 0))
                s.connect((host, int(port)))
                s.sendall(b"taojie/2 ")
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        opened = time.monotonic() - start
        t0 = time.monotonic()
        try:
            r = subprocess.run([a.bin, "exec", addr, "--key", key, "--", "true"],
                               capture_output=True, text=True, timeout=15)
            took, rc, err = time.monotonic() - t0, r.returncode, r.stderr.strip()
        except subprocess.TimeoutExpired:
            took, rc, err = time.monotonic() - t0, "timeout", ""
        held = 0
        for s in socks:
            s.setblocking(False)
            try:
                while True:
                    d = s.recv(64)
                    if not d:
                        break
            except BlockingIOError:
                held += 1
            except OSError:
                pass
        print(f"n={n} opened_in={opened:.2f}s connect_failures={failed} held_open={held} "
              f"exec_true rc={rc} in {took * 1000:.0f} ms; server RSS {before} -> "
              f"{rss_kib(server.pid)} KiB" + (f"; client said: {err.splitlines()[-1]}" if err else ""))
        for s in socks:
            s.close()
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
