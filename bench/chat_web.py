#!/usr/bin/env python3
"""Chat web benchmark (issue 12), in one run on loopback with a release build.

  1. `taojie serve chat --listen 127.0.0.1:0 --web 127.0.0.1:0`, 1,000 WebSocket clients (/ws)
     held idle in its one room: broker VmRSS growth / 1,000;
  2. a TCP line client in the same room sends `~T<send time µs> x...` lines at RATE lines/s
     for SECS s; every WebSocket member stamps each arrival: per-delivery latency p50/p99/max,
     and the CPU of the broker and of this client process over the phase;
  3. the TCP fan-out of bench/chat.sh (500 clients, --throughput 5 --latency 5) on HEAD and on
     commit ca0ff62 (built in a temporary git worktree, removed afterwards, with its own target
     dir target/bench-chat-ca0ff62, kept for the next run), alternating ROUNDS times, with
     HEAD's examples/chat_load driving both: lines delivered/s and the broker's CPU per delivery
     over the throughput phase (less sensitive than throughput to what else runs).

The WebSocket client is written by hand (asyncio Protocols, masked text frames out, unmasked
frames in) so nothing is installed. Everything started is stopped by PID; every wait is bounded.
Knobs (environment): WORKERS (client processes holding the members, one phase each: "1 2"),
CLIENTS (1000), RATE (10), SECS (20), ROUNDS (3), SKIP_TCP (set: skip 3), SKIP_WEB (set: skip
1 and 2).
"""
import asyncio, base64, math, multiprocessing, os, re, resource, signal, socket, struct, subprocess
import shutil, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = int(os.environ.get("CLIENTS", 1000))
RATE = float(os.environ.get("RATE", 10))
SECS = float(os.environ.get("SECS", 20))
ROUNDS = int(os.environ.get("ROUNDS", 3))
OLD = "ca0ff62"
TICK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_broker(args, want):
    """Starts `args`, waits (≤ 10 s) for the announce lines `chat tcp ADDR` etc.; (proc, addrs)."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        addrs, deadline = {}, time.time() + 10
        os.set_blocking(p.stdout.fileno(), False)
        buf = ""
        while time.time() < deadline and not all(w in addrs for w in want):
            try:
                buf += os.read(p.stdout.fileno(), 65536).decode()
            except BlockingIOError:
                pass
            for m in re.finditer(r"^(\S+) tcp (\S+)$", buf, re.M):
                addrs[m.group(1)] = m.group(2)
            time.sleep(0.05)
        if not all(w in addrs for w in want):
            raise SystemExit(f"{args[0]} did not announce {want}")
        return p, addrs
    except BaseException:
        p.kill()
        p.wait(5)
        raise


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# --- a minimal WebSocket client -------------------------------------------------------------

class Member(asyncio.Protocol):
    def __init__(self, hub):
        self.hub, self.buf, self.open = hub, b"", False
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, t):
        self.t = t

    def data_received(self, data):
        now = time.time_ns() // 1000
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(self.buf[:80]))
                return
            self.open, self.buf = True, self.buf[end + 4:]
            self.ready.set_result(None)
        b, i, n = self.buf, 0, len(self.buf)
        hub = self.hub
        while n - i >= 2:
            ln, h = b[i + 1] & 0x7F, 2
            if ln == 126:
                if n - i < 4:
                    break
                ln, h = struct.unpack_from(">H", b, i + 2)[0], 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln, h = struct.unpack_from(">Q", b, i + 2)[0], 10
            if n - i < h + ln:
                break
            payload = b[i + h:i + h + ln]
            i += h + ln
            hub.last = now
            hub.messages += 1
            k = payload.find(b"~T")
            if k >= 0 and hub.measuring:
                sp = payload.find(b" ", k)
                hub.lat.append(now - int(payload[k + 2:sp]))
        self.buf = b[i:]

    def connection_lost(self, exc):
        self.hub.closed += 1


class Hub:
    def __init__(self):
        self.last, self.messages, self.closed, self.measuring, self.lat = 0, 0, 0, False, []


async def ws_open(loop, hub, host, port):
    t, m = await loop.create_connection(lambda: Member(hub), host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    t.write((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await asyncio.wait_for(m.ready, 10)
    return m


async def quiesce(hub, quiet, limit):
    hub.last, t0 = time.time_ns() // 1000, time.time()
    while time.time() - t0 < limit:
        await asyncio.sleep(0.1)
        if time.time_ns() // 1000 - hub.last > quiet * 1e6:
            return True
    return False


def sender(addr, rate, secs, out):
    """A TCP line client in its own process: sends `~T<µs> xxx` at `rate` lines/s."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(1)
    try:
        s.recv(65536)  # whatever the broker greets with
    except socket.timeout:
        pass
    s.setblocking(False)
    n, t0 = 0, time.time()
    while time.time() - t0 < secs:
        due = t0 + n / rate
        d = due - time.time()
        if d > 0:
            time.sleep(d)
        s.sendall(f"~T{time.time_ns() // 1000} {'x' * 20}\n".encode())
        n += 1
        try:
            while s.recv(65536):
                pass
        except BlockingIOError:
            pass
    time.sleep(0.5)
    s.close()
    out.put(n)


def worker(host, port, n, ready, go, done, out):
    """A process holding `n` WebSocket members on its own asyncio loop."""
    async def run():
        loop, hub = asyncio.get_running_loop(), Hub()
        hub.measuring = True  # no stamped line comes before the sender starts
        members = [await ws_open(loop, hub, host, port) for _ in range(n)]
        await quiesce(hub, 1.0, 120)
        ready.put((hub.messages, hub.closed))
        while not go.is_set():
            await asyncio.sleep(0.05)
        c0 = time.process_time()
        while not done.is_set():
            await asyncio.sleep(0.05)
        await quiesce(hub, 1.0, 10)
        out.put((hub.lat, time.process_time() - c0, hub.closed))
        for m in members:
            m.t.close()
    asyncio.run(run())


def web_phase(bin_path, workers):
    print(f"== taojie serve chat --web, {CLIENTS} WebSocket clients in one room, "
          f"held by {workers} client process(es)")
    broker, addrs = start_broker(
        [bin_path, "serve", "chat", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"],
        ["chat", "chat-web"])
    procs = []
    try:
        pid = broker.pid
        host, port = addrs["chat-web"].rsplit(":", 1)
        time.sleep(0.5)
        rss0 = rss_kib(pid)
        ready, out, q = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Queue()
        go, done = multiprocessing.Event(), multiprocessing.Event()
        t0 = time.time()
        for w in range(workers):
            n = CLIENTS // workers + (1 if w < CLIENTS % workers else 0)
            procs.append(multiprocessing.Process(
                target=worker, args=(host, int(port), n, ready, go, done, out)))
            procs[-1].start()
        got = [ready.get(timeout=180) for _ in procs]
        t_open = time.time() - t0
        rss1 = rss_kib(pid)
        print(f"{CLIENTS} WebSocket clients open and quiet in {t_open:.1f} s "
              f"({sum(g[0] for g in got)} messages while joining, {sum(g[1] for g in got)} closed); "
              f"broker VmRSS {rss0} KiB before, {rss1} KiB idle = "
              f"{(rss1 - rss0) / CLIENTS:.2f} KiB per idle client")

        sp = multiprocessing.Process(target=sender, args=(addrs["chat"], RATE, SECS, q))
        b0, w0 = cpu_s(pid), time.time()
        go.set()
        sp.start()
        sent = q.get(timeout=SECS + 30)
        done.set()
        res = [out.get(timeout=30) for _ in procs]
        wall = time.time() - w0
        b1 = cpu_s(pid)
        sp.join(5)
        lat = sorted(x for r in res for x in r[0])
        ccpu = sum(r[1] for r in res)
        want = sent * CLIENTS
        pct = lambda q_: lat[min(len(lat) - 1, int(q_ * len(lat)))] / 1000
        print(f"latency at {RATE:g} lines/s into {CLIENTS} web members for {SECS:g} s: "
              f"{len(lat)} deliveries of {want} owed, p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, "
              f"max {lat[-1] / 1000:.2f} ms; over {wall:.1f} s broker CPU {b1 - b0:.2f} s "
              f"({100 * (b1 - b0) / wall:.0f}% of one CPU, {1e6 * (b1 - b0) / max(1, len(lat)):.1f} µs "
              f"per delivery), client processes {ccpu:.2f} s ({100 * ccpu / wall:.0f}%, "
              f"{1e6 * ccpu / max(1, len(lat)):.1f} µs per delivery); {sum(r[2] for r in res)} closed; "
              f"broker VmRSS {rss_kib(pid)} KiB; load average {os.getloadavg()[0]:.2f}")
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
        stop(broker)


def tcp_phase(head_bin, load_bin):
    print(f"== TCP fan-out, 500 clients --throughput 5 --latency 5: HEAD vs {OLD}, "
          f"{ROUNDS} alternating rounds")
    wt = "/tmp/tj_" + OLD
    target = os.path.join(ROOT, "target", "bench-chat-" + OLD)
    subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt],
                   stderr=subprocess.DEVNULL)
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, OLD], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "taojie"], cwd=wt,
                       env={**os.environ, "CARGO_TARGET_DIR": target}, check=True)
        old_bin = os.path.join(target, "release", "taojie")
        res = {"HEAD": [], OLD: []}
        for r in range(ROUNDS):
            for name, b in ((("HEAD", head_bin), (OLD, old_bin)) if r % 2 == 0
                            else ((OLD, old_bin), ("HEAD", head_bin))):
                broker, addrs = start_broker(
                    [b, "serve", "chat", "--listen", "127.0.0.1:0"], ["chat"])
                try:
                    out = subprocess.run(
                        ["timeout", "300", load_bin, addrs["chat"], str(broker.pid), "500",
                         "--throughput", "5", "--latency", "5"],
                        capture_output=True, text=True).stdout
                finally:
                    stop(broker)
                tp = float(re.search(r"= (\d+) lines/s summed", out).group(1))
                p99 = float(re.search(r"p99 ([\d.]+) ms", out).group(1))
                ns = float(re.search(r"= ([\d.]+) ns per delivery", out).group(1))
                res[name].append((tp, p99, ns))
                print(f"round {r + 1} {name:7}: {tp / 1e6:.2f} M lines/s, broker CPU {ns:.1f} ns "
                      f"per delivery, p99 at half rate {p99:.1f} ms (load average "
                      f"{os.getloadavg()[0]:.2f})")
        def med(xs):
            xs = sorted(xs)
            return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2
        for i, what, scale, unit in ((0, "throughput", 1e6, "M/s"),
                                     (2, "broker CPU per delivery", 1, "ns")):
            h, o = med([x[i] for x in res["HEAD"]]), med([x[i] for x in res[OLD]])
            ratios = [a[i] / b[i] for a, b in zip(res["HEAD"], res[OLD])]
            gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            print(f"median {what} HEAD {h / scale:.2f} {unit}, {OLD} {o / scale:.2f} {unit}: "
                  f"ratio {h / o:.3f}; per round {', '.join(f'{x:.3f}' for x in ratios)}, "
                  f"geometric mean {gm:.3f}")
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt])


def main():
    os.chdir(ROOT)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "taojie", "--example",
                    "chat_load"], check=True)
    head_bin = os.path.abspath("target/release/taojie")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    for w in ([] if os.environ.get("SKIP_WEB") else os.environ.get("WORKERS", "1 2").split()):
        web_phase(head_bin, int(w))
    if not os.environ.get("SKIP_TCP"):
        tcp_phase(head_bin, os.path.abspath("target/release/examples/chat_load"))


if __name__ == "__main__":
    main()
