#!/usr/bin/env python3
"""The two ends of bench/proxy.sh, the same for every SOCKS5 proxy measured.

  proxy_peer.py sink                     accept connections one after another; read each's
                                         8-byte length, then that many bytes (or to its
                                         end), answer the count (8 bytes) and close. Prints
                                         its port first.
  proxy_peer.py echo                     echo server, a thread per connection; prints its
                                         port first.
  proxy_peer.py send PROXY TARGET FILE   through the proxy (SOCKS5, no auth, CONNECT to
                                         TARGET) to the sink, FILE's length and then FILE by
                                         sendfile(2), wait for the sink's 8-byte count;
                                         print "SECONDS BYTES".
  proxy_peer.py setup PROXY TARGET N     N connections one after another, each timed from
                                         connect() to the proxy's success reply (PROXY "-":
                                         to TARGET directly, to its accept); "P50_US P99_US".
  proxy_peer.py many PROXY TARGET N      N connections at once through the proxy to an echo
                                         server, each sending 4 KiB of its own and checking
                                         they come back whole; print "SECONDS INTACT".

The client waits for the method reply before it sends its request, as RFC 1928 has it:
microsocks reads the greeting with one recv() and drops whatever came with it, so a request
sent in the same segment is lost and the client waits for its reply forever (that was the
draft's hang). The sink is told the length up front rather than reading to a half-close
because microsocks does not carry half-closes: when the client shuts down its sending side
it closes both connections, and the sink's count never comes back. Every socket wait is bounded (WAIT seconds, a whole `many` run 120 s).
"""
import asyncio
import ipaddress
import os
import socket
import struct
import sys
import threading
import time

WAIT = 60  # seconds any one socket operation may take


def addr(text):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def request(target):
    host, port = addr(target)
    ip = ipaddress.ip_address(host)
    kind = 1 if ip.version == 4 else 4
    return b"\x05\x01\x00" + bytes([kind]) + ip.packed + struct.pack(">H", port)


def exact(c, n):
    got = b""
    while len(got) < n:
        more = c.recv(n - len(got))
        if not more:
            sys.exit("the proxy closed during the handshake")
        got += more
    return got


def through(proxy, target):
    """A connected socket, its SOCKS5 handshake done."""
    c = socket.create_connection(addr(proxy), timeout=WAIT)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"\x05\x01\x00")
    if exact(c, 2) != b"\x05\x00":
        sys.exit("the proxy wants a login")
    c.sendall(request(target))
    head = exact(c, 4)
    if head[1] != 0:
        sys.exit(f"the proxy refused: reply {head[1]}")
    exact(c, (4 if head[3] == 1 else 16) + 2)
    return c


def listener():
    """A listening socket on a free loopback port, the port printed. Its backlog holds a
    `many` run's connections all at once: with a short one, those a quick proxy opens
    before the server accepts them overflow it, and the kernel drops them later under the
    proxy, which then ends the client's connection (microsocks lost a fifth of 1,000 so
    with a backlog of 128)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    print(s.getsockname()[1], flush=True)
    return s


def sink():
    s = listener()
    buf = bytearray(1 << 20)
    while True:
        c, _ = s.accept()
        c.settimeout(WAIT)
        try:
            (size,) = struct.unpack("<Q", exact(c, 8))
            total = 0
            while total < size:
                n = c.recv_into(buf, min(len(buf), size - total))
                if n == 0:
                    break
                total += n
            c.sendall(struct.pack("<Q", total))
        except (OSError, SystemExit):
            pass  # a client gone or too slow: on to the next
        c.close()


def echo():
    s = listener()

    def serve(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(65536)
        try:
            while (n := c.recv_into(buf)) > 0:
                c.sendall(memoryview(buf)[:n])
        except OSError:
            pass  # a client reset: its own count tells
        c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def send(proxy, target, path):
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    c = through(proxy, target)
    # sendfile(2) wants a blocking socket (a timeout makes it non-blocking); the script's
    # `timeout` bounds this run as a whole.
    c.settimeout(None)
    c.sendall(struct.pack("<Q", size))
    with open(path, "rb") as f:
        sent = 0
        while sent < size:
            n = os.sendfile(c.fileno(), f.fileno(), sent, size - sent)
            if n == 0:
                break
            sent += n
    (count,) = struct.unpack("<Q", exact(c, 8))
    secs = time.perf_counter() - t0
    if count != size:
        sys.exit(f"the sink got {count} of {size} bytes")
    print(f"{secs:.6f} {count}")


def setup(proxy, target, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        if proxy == "-":
            c = socket.create_connection(addr(target), timeout=WAIT)
        else:
            c = through(proxy, target)
        times.append(time.perf_counter_ns() - t0)
        c.close()
    times.sort()
    print(f"{times[len(times) // 2] / 1000:.1f} {times[int(len(times) * 0.99)] / 1000:.1f}")


class Failed(Exception):
    """A connection of `many` that failed, and where."""


async def one(proxy, target, i, gate):
    host, port = addr(proxy)
    stage = "connect"
    try:
        r, w = await asyncio.open_connection(host, port)
        stage = "method reply"
        w.write(b"\x05\x01\x00")
        if await r.readexactly(2) != b"\x05\x00":
            raise Failed("method refused")
        stage = "request reply"
        w.write(request(target))
        head = await r.readexactly(4)
        if head[1] != 0:
            raise Failed(f"refused with reply {head[1]}")
        await r.readexactly((4 if head[3] == 1 else 16) + 2)
    except Failed:
        raise
    except Exception as e:
        raise Failed(f"{stage}: {type(e).__name__}") from e
    finally:
        gate["open"] += 1
        if gate["open"] == gate["n"]:
            gate["ready"].set()
    await gate["ready"].wait()  # every connection open at once before any data moves
    msg = i.to_bytes(4, "big") * 1024
    try:
        w.write(msg)
        back = await r.readexactly(len(msg))
    except Exception as e:
        raise Failed(f"echo: {type(e).__name__}") from e
    w.close()
    if back != msg:
        raise Failed("echo came back altered")
    return True


async def many(proxy, target, n):
    gate = {"open": 0, "n": n, "ready": asyncio.Event()}
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(one(proxy, target, i, gate)) for i in range(n)]
    # Those not done in 120 s count as not intact (and so do those that failed).
    done, pending = await asyncio.wait(tasks, timeout=120)
    for t in pending:
        t.cancel()
    intact = sum(1 for t in done if not t.exception() and t.result() is True)
    print(f"{time.perf_counter() - t0:.3f} {intact}")
    # Why the others failed, on stderr: one line per kind of failure.
    why = {}
    for t in tasks:
        if t in pending:
            kind = "not done in 120 s"
        elif t.exception():
            kind = str(t.exception())
        else:
            continue
        why[kind] = why.get(kind, 0) + 1
    for kind, count in sorted(why.items()):
        print(f"{proxy}: {count} of {n} connections: {kind}", file=sys.stderr)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sink":
        sink()
    elif cmd == "echo":
        echo()
    elif cmd == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "setup":
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "many":
        asyncio.run(many(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        sys.exit(__doc__)
