"""Memory per idle connection: opens N idle TCP connections to each echo server and reads the
server's VmRSS and VmHWM from /proc/PID/status before and after.

For each server: start it on 127.0.0.1 port 0, warm it up (a few connections that echo a byte
and close, so lazily built per-thread buffers are already in the baseline), read VmRSS, open N
connections that send nothing, wait until the server has accepted every one (its open file
descriptors, and for thread-per-connection servers its thread count, say so), read VmRSS and
VmHWM again, close everything and stop the server by PID.

Servers with the seeds' listen(5) are fed 5 connections at a time, each batch accepted before
the next: a fuller queue makes the kernel drop SYNs and the client wait a second or more to
retry. The memory figures do not depend on it; the time to connect does.

Usage: python3 bench/idle_conns.py [--conns N] [--servers a,b] [--timeout S] [--no-build]
"""

import argparse
import resource
import socket
import sys
import time

import servers
from servers import log

# name -> (connections opened before waiting for the server to accept them, per-conn thread?)
IDLE_PEERS = {
    "taojie": (500, False),
    "c-epoll": (500, False),
    "thread_echo.py": (5, True),
    "seed socketserver": (5, True),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--conns", type=int, default=10_000, help="idle connections per server")
    p.add_argument("--servers", help="comma-separated subset of: " + ", ".join(IDLE_PEERS))
    p.add_argument("--timeout", type=float, default=120, help="seconds allowed per server")
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--taojie", default=servers.TAOJIE, help="taojie binary")
    a = p.parse_args()
    if not 1 <= a.conns <= 25_000 or not 1 <= a.timeout <= 600:
        p.error("--conns must be in 1..25000 and --timeout in 1..600")
    return a


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def wait_until(cond, deadline, step=0.01):
    while not cond():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def settled_rss(server, deadline):
    """VmRSS once two readings 200 ms apart agree (a server may still be touching pages)."""
    last = server.status("VmRSS")
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = server.status("VmRSS")
        if now == last:
            break
        last = now
    return last


def warm_up(server, deadline):
    fds = server.open_fds()
    for _ in range(8):
        with socket.create_connection(server.addr, timeout=5) as s:
            s.sendall(b"x")
            s.recv(16)
    # A few seconds at most: a server that keeps a descriptor open after this is measured as is.
    wait_until(lambda: server.open_fds() <= fds, min(deadline, time.monotonic() + 5))


def measure(name, argv, n, batch, threaded, timeout):
    row = {"server": name, "wanted": n}
    server = servers.Server(name, argv)
    socks = []
    try:
        deadline = time.monotonic() + timeout
        warm_up(server, deadline)
        fds0, threads0 = server.open_fds(), server.status("Threads")
        row["rss_before"] = settled_rss(server, deadline)

        def accepted():
            # Threads first: listing /proc/PID/fd with thousands of entries costs far more.
            if threaded:
                by_threads = server.status("Threads") - threads0
                if by_threads < len(socks):
                    return by_threads
                return min(by_threads, server.open_fds() - fds0)
            return server.open_fds() - fds0

        t0 = time.monotonic()
        while len(socks) < n and time.monotonic() < deadline:
            for _ in range(min(batch, n - len(socks))):
                socks.append(socket.create_connection(server.addr, timeout=10))
            if not wait_until(lambda: accepted() >= len(socks), deadline, step=0.001):
                break
        row["connect_seconds"] = time.monotonic() - t0
        row["accepted"] = accepted()
        row["rss_after"] = settled_rss(server, deadline)
        row["hwm"] = server.status("VmHWM")
        row["threads"] = server.status("Threads")
        row["alive"] = server.alive()
    except OSError as e:
        row["error"] = f"{type(e).__name__}: {e}"
        row.setdefault("accepted", len(socks))
    finally:
        for s in socks:
            s.close()
        server.stop()
    return row


def main():
    args = parse_args()
    servers.install_cleanup()
    have = raise_nofile(args.conns + 256)
    if have < args.conns + 64:
        sys.exit(f"idle_conns.py: RLIMIT_NOFILE allows {have} files; need {args.conns + 64}")
    known = servers.peer_commands(args.taojie)
    names = [s.strip() for s in (args.servers or ",".join(IDLE_PEERS)).split(",") if s.strip()]
    for name in names:
        if name not in IDLE_PEERS:
            sys.exit(f"idle_conns.py: unknown server {name!r}; known: {', '.join(IDLE_PEERS)}")
    if not args.no_build:
        servers.build(taojie=args.taojie == servers.TAOJIE)
    rows = []
    for name in names:
        argv = list(known[name][0])
        if name == "taojie":
            argv += ["--max-conns", str(2 * args.conns)]
        batch, threaded = IDLE_PEERS[name]
        log(f"{name}: opening {args.conns} idle connections ...")
        rows.append(measure(name, argv, args.conns, batch, threaded, args.timeout))
        log(f"{name}: {rows[-1]}")

    print(f"Machine: {servers.machine_summary()}.\n")
    print("| server | idle conns accepted | VmRSS before KiB | VmRSS with conns KiB "
          "| VmHWM KiB | KiB per conn | threads | seconds to connect |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "rss_after" not in r:
            print(f"| {r['server']} | {r.get('accepted', 0)} | failed: {r.get('error')} |" + " |" * 5)
            continue
        per = (r["rss_after"] - r["rss_before"]) / max(1, r["accepted"])
        short = "" if r["accepted"] >= r["wanted"] else f" of {r['wanted']}"
        print(f"| {r['server']} | {r['accepted']:,}{short} | {r['rss_before']:,} | {r['rss_after']:,} "
              f"| {r['hwm']:,} | {per:.2f} | {r['threads']:,} | {r['connect_seconds']:.1f} |")
    return 0 if all("error" not in r and r["accepted"] >= r["wanted"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
