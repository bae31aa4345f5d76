#!/usr/bin/env python3
"""Soak (issue 14, item 6): every service of one `taojie serve --any-port` under a mixed load of
clients coming and going for a bounded time; the server's memory and open descriptors must come
back to their baseline afterwards, and no client may meet an error.

The server: `taojie serve --any-port` (echo tcp/udp, time udp, daytime tcp, sntp udp, exec and
files with the key it creates, chat tcp/udp and its page), XDG_DATA_HOME in a temporary
directory, every address read from the lines it prints. WORKERS threads each pick a client at
random, run it to the end and pick again, until SECS have passed (or MAX_OPS clients in all):

  echo-tcp   connect, send 1 B-64 KiB of random bytes, read them back, close
  echo-udp   a 512-byte datagram, the same back
  time-udp   the strftime service: "%Y-%m-%d" -> a date
  daytime    connect, read the time line, the server closes
  sntp       a version-4 client packet -> a server packet (mode 4) with a transmit time
  exec       `taojie exec -- echo soak` (output and status 0), `sh -c 'echo out; exit 3'` (status 3)
  files      `taojie put` a 16 KiB file (each worker its own few names, --overwrite), `taojie
             get` it back and compare, `taojie ls --json` lists it
  chat-tcp   two members join, one talks, the other hears the line, both /quit
  chat-ws    a browser's WebSocket on /ws: 101, one text message, a close, the server closes

Every client has a 20 s limit. UDP clients send again (up to 3 tries) when an answer is lost; a
retry is counted, not an error. Samples of the server (VmRSS, VmHWM, threads from
/proc/PID/status, open descriptors from /proc/PID/fd, child processes) are taken: at the
baseline (after WARM seconds of the same load and a quiet moment), every SECS/10 during the
load, and after it (once the descriptors have settled, at most SETTLE seconds).

Pass: descriptors back to the baseline (+FD_TOL), VmRSS within RSS_TOL_KIB of the baseline, no
child process left, no client error. Exit status 0 on pass, 1 otherwise.

Knobs (environment): SECS (600), WARM (20), WORKERS (6), MAX_OPS (1000000), RSS_TOL_KIB (8192),
FD_TOL (0), SETTLE (30), TAOJIE (target/release/taojie; built if missing).
Usage: SECS=120 python3 bench/soak.py
"""
import base64
import collections
import json
import os
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECS = float(os.environ.get("SECS", 600))
WARM = float(os.environ.get("WARM", 20))
WORKERS = int(os.environ.get("WORKERS", 6))
MAX_OPS = int(os.environ.get("MAX_OPS", 1_000_000))
RSS_TOL_KIB = int(os.environ.get("RSS_TOL_KIB", 8192))
FD_TOL = int(os.environ.get("FD_TOL", 0))
SETTLE = float(os.environ.get("SETTLE", 30))
TAOJIE = os.environ.get("TAOJIE", os.path.join(ROOT, "target", "release", "taojie"))
LIMIT = 20.0  # seconds any one client may take


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Fail(Exception):
    """A client saw something wrong; the message is its kind."""


# --- the server -----------------------------------------------------------------------------

def start_server(tmp):
    env = dict(os.environ, XDG_DATA_HOME=os.path.join(tmp, "data"))
    err = open(os.path.join(tmp, "server.log"), "wb")
    p = subprocess.Popen([TAOJIE, "serve", "--any-port"], stdout=subprocess.PIPE, stderr=err,
                         stdin=subprocess.DEVNULL, env=env)
    addrs, buf, deadline = {}, b"", time.time() + 20
    while len(addrs) < 10:
        left = deadline - time.time()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            p.kill()
            sys.exit(f"soak: the server announced {len(addrs)} of 10 sockets in 20 s")
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            sys.exit("soak: the server exited before announcing its sockets")
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            service, proto, addr = line.decode().split(" ", 2)
            host, port = addr.rsplit(":", 1)
            addrs[(service, proto)] = (host, int(port))
    key = os.path.join(tmp, "data", "taojie", "key")
    return p, addrs, key


def sample(pid):
    s = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                s[k] = int(v.split()[0])
    s["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    kids = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids += len(f.read().split())
        except FileNotFoundError:
            pass
    s["children"] = kids
    return s


def show(label, s):
    return (f"{label:<9} VmRSS {s['VmRSS'] / 1024:7.2f} MiB  VmHWM {s['VmHWM'] / 1024:7.2f} MiB  "
            f"fds {s['fds']:4d}  threads {s['Threads']:3d}  children {s['children']}")


# --- the clients ----------------------------------------------------------------------------

def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(min(65536, n - len(out)))
        if not b:
            raise Fail("closed early")
        out += b
    return bytes(out)


def recv_to_eof(s, cap=1 << 20):
    out = bytearray()
    while len(out) < cap:
        b = s.recv(65536)
        if not b:
            return bytes(out)
        out += b
    raise Fail("no end")


def udp_ask(addr, data, check):
    """Sends `data`, returns the answer `check` accepts; (answer, retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        for attempt in range(3):
            u.sendto(data, addr)
            try:
                ans = u.recv(65536)
            except socket.timeout:
                continue
            if not check(ans):
                raise Fail("wrong answer")
            return attempt
    raise Fail("3 datagrams lost")


class Clients:
    def __init__(self, addrs, key, tmp):
        self.a, self.key, self.tmp = addrs, key, tmp
        self.n = 0
        self.lock = threading.Lock()
        self.retries = 0

    def retried(self, n):
        with self.lock:
            self.retries += n

    def next_id(self):
        with self.lock:
            self.n += 1
            return self.n

    def addr(self, service, proto):
        h, p = self.a[(service, proto)]
        return f"{h}:{p}"

    def echo_tcp(self, w):
        data = os.urandom(random.randint(1, 65536))
        with socket.create_connection(self.a[("echo", "tcp")], timeout=LIMIT) as s:
            s.sendall(data)
            if recv_exact(s, len(data)) != data:
                raise Fail("echo differs")

    def echo_udp(self, w):
        data = os.urandom(512)
        self.retried(udp_ask(self.a[("echo", "udp")], data, lambda a: a == data))

    def time_udp(self, w):
        ok = lambda a: re.fullmatch(rb"\d{4}-\d\d-\d\d", a) is not None
        self.retried(udp_ask(self.a[("time", "udp")], b"%Y-%m-%d", ok))

    def daytime(self, w):
        with socket.create_connection(self.a[("daytime", "tcp")], timeout=LIMIT) as s:
            line = recv_to_eof(s)
        if not re.search(rb"\d\d:\d\d:\d\d", line):
            raise Fail("no time in the daytime line")

    def sntp(self, w):
        pkt = bytes([0x23]) + bytes(47)  # LI 0, version 4, mode 3 (client)

        def ok(a):
            return len(a) == 48 and a[0] & 7 == 4 and struct.unpack(">Q", a[40:48])[0] != 0
        self.retried(udp_ask(self.a[("sntp", "udp")], pkt, ok))

    def run(self, args, want_rc=0):
        p = subprocess.run([TAOJIE] + args, capture_output=True, timeout=LIMIT)
        if p.returncode != want_rc:
            first = (p.stderr.decode(errors="replace").strip().splitlines() or [""])[0]
            raise Fail(f"exit {p.returncode}: {first[:80]}")
        return p.stdout

    def exec_(self, w):
        addr = self.addr("exec", "tcp")
        if random.random() < 0.5:
            out = self.run(["exec", addr, "--key", self.key, "--", "echo", "soak"])
            want = b"soak\n"
        else:
            out = self.run(["exec", addr, "--key", self.key, "--", "sh", "-c",
                            "echo out; exit 3"], want_rc=3)
            want = b"out\n"
        if out != want:
            raise Fail("exec output differs")

    def files(self, w):
        addr = self.addr("files", "tcp")
        name = f"w{w}-{random.randint(0, 3)}"
        src = os.path.join(self.tmp, "src", name)
        with open(src, "wb") as f:
            f.write(os.urandom(16384))
        self.run(["put", addr, src, "--overwrite", "-q", "--key", self.key])
        out = os.path.join(self.tmp, "out", f"w{w}")
        self.run(["get", addr, name, "-o", out, "--overwrite", "-q", "--key", self.key])
        with open(src, "rb") as a, open(os.path.join(out, name), "rb") as b:
            if a.read() != b.read():
                raise Fail("get differs from put")
        listing = json.loads(self.run(["ls", addr, "--json", "--key", self.key]))
        if name not in [e["name"] for e in listing]:
            raise Fail("ls misses the file")

    def chat_tcp(self, w):
        i = self.next_id()
        a_name, b_name = f"a{w}x{i}", f"b{w}x{i}"
        addr = self.a[("chat", "tcp")]
        with socket.create_connection(addr, timeout=LIMIT) as a, \
                socket.create_connection(addr, timeout=LIMIT) as b:
            af, bf = a.makefile("rb"), b.makefile("rb")
            for s, f, name in ((a, af, a_name), (b, bf, b_name)):
                s.sendall(f"/nick {name}\n".encode())
                deadline = time.time() + LIMIT
                while name.encode() not in f.readline():  # the rename is confirmed
                    if time.time() > deadline:
                        raise Fail("no rename")
            b.sendall(f"hello {i}\n".encode())
            want = f"<{b_name}> hello {i}".encode()
            deadline = time.time() + LIMIT
            while True:
                line = af.readline()
                if not line:
                    raise Fail("closed before the line came")
                if want in line:
                    break
                if time.time() > deadline:
                    raise Fail("line not heard")
            for s, f in ((a, af), (b, bf)):
                s.sendall(b"/quit\n")
                while f.readline():  # the broker closes after /quit
                    pass

    def chat_ws(self, w):
        host, port = self.a[("chat-web", "tcp")]
        with socket.create_connection((host, port), timeout=LIMIT) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                b = s.recv(4096)
                if not b:
                    raise Fail("closed before 101")
                head += b
            if not head.startswith(b"HTTP/1.1 101"):
                raise Fail("no 101")

            def frame(op, payload):
                mask = os.urandom(4)
                masked = bytes(c ^ mask[j % 4] for j, c in enumerate(payload))
                return bytes([0x80 | op, 0x80 | len(payload)]) + mask + masked
            s.sendall(frame(1, f"hello from ws {w}".encode()))
            s.sendall(frame(8, struct.pack(">H", 1000)))
            recv_to_eof(s)  # the server answers the close and ends the connection


KINDS = ["echo_tcp", "echo_udp", "time_udp", "daytime", "sntp", "exec_", "files", "chat_tcp",
         "chat_ws"]


def load(clients, secs, counts, errors, ops_left):
    stop = time.time() + secs

    def worker(w):
        rnd = random.Random(w)
        while time.time() < stop:
            with clients.lock:
                if ops_left[0] <= 0:
                    return
                ops_left[0] -= 1
            kind = rnd.choice(KINDS)
            try:
                getattr(clients, kind)(w)
                what = None
            except Fail as e:
                what = str(e)
            except socket.timeout:
                what = "timeout"
            except subprocess.TimeoutExpired:
                what = "timeout"
            except OSError as e:
                what = type(e).__name__
            with clients.lock:
                counts[kind.strip("_")] += 1
                if what:
                    errors[(kind.strip("_"), what)] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    return threads


def settle(pid, want_fds, limit):
    """Waits (at most `limit` s) until the server holds `want_fds` descriptors or fewer."""
    deadline = time.time() + limit
    s = sample(pid)
    while s["fds"] > want_fds and time.time() < deadline:
        time.sleep(0.5)
        s = sample(pid)
    time.sleep(1)
    return sample(pid)


def main():
    if not os.path.exists(TAOJIE):
        log("building taojie (cargo build --release) ...")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="taojie-soak-")
    for d in ("src", "out"):
        os.makedirs(os.path.join(tmp, d))
    server, addrs, key = start_server(tmp)
    pid = server.pid
    try:
        clients = Clients(addrs, key, tmp)
        counts, errors = collections.Counter(), collections.Counter()
        ops_left = [MAX_OPS]
        log(f"soak: server PID {pid}, {WORKERS} workers, warm-up {WARM:.0f} s, load {SECS:.0f} s")
        for t in load(clients, WARM, counts, errors, ops_left):
            t.join()
        warm_counts = sum(counts.values())
        base = settle(pid, 0, 5)
        log(show("baseline", base))
        t0 = time.time()
        threads = load(clients, SECS, counts, errors, ops_left)
        peak_fds, every = base["fds"], max(SECS / 10, 1)
        next_sample = t0 + every
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if time.time() >= next_sample:
                s = sample(pid)
                peak_fds = max(peak_fds, s["fds"])
                log(show(f"{time.time() - t0:5.0f} s", s) + f"  clients {sum(counts.values())}")
                next_sample += every
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        after = settle(pid, base["fds"] + FD_TOL, SETTLE)
        log(show("after", after))
        if server.poll() is not None:
            sys.exit(f"soak: the server exited with {server.returncode}")
        done = sum(counts.values()) - warm_counts
        d_rss, d_fds = after["VmRSS"] - base["VmRSS"], after["fds"] - base["fds"]
        ok = (d_fds <= FD_TOL and d_rss <= RSS_TOL_KIB and after["children"] == 0
              and not errors)
        print(f"soak: {done} clients in {elapsed:.0f} s after {warm_counts} in the warm-up "
              f"({WORKERS} workers); by kind over both: "
              + ", ".join(f"{k} {counts[k]}" for k in sorted(counts)))
        print(f"soak: UDP answers lost and asked again: {clients.retries}")
        print("soak: " + show("baseline", base))
        print("soak: " + show("after", after))
        print(f"soak: VmRSS {d_rss:+d} KiB (tolerance +{RSS_TOL_KIB}), fds {d_fds:+d} "
              f"(tolerance +{FD_TOL}, peak {peak_fds} during the load), "
              f"children {after['children']}")
        if errors:
            print("soak: client errors: " + ", ".join(
                f"{k}: {what} x{n}" for (k, what), n in sorted(errors.items())))
        else:
            print("soak: client errors: none")
        print("soak: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
