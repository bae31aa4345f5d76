#!/usr/bin/env python3
"""The client end of bench/proxy.sh, the same for every SOCKS5 proxy measured (the sink and
the echo server are bench/forward_peer.py's).

  proxy_peer.py send PROXY TARGET FILE   through the proxy (SOCKS5, no auth, CONNECT to
                                         TARGET), FILE by sendfile(2), half-close, wait for
                                         the sink's 8-byte count; print "SECONDS BYTES".
  proxy_peer.py setup PROXY TARGET N     N connections one after another, each timed from
                                         connect() to the proxy's success reply (PROXY "-":
                                         to TARGET directly, to its accept); "P50_US P99_US".
  proxy_peer.py many PROXY TARGET N      N connections at once through the proxy to an echo
                                         server, each sending 4 KiB of its own and checking
                                         they come back whole; print "SECONDS INTACT".
"""
import asyncio
import ipaddress
import os
import socket
import struct
import sys
import time


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
    c = socket.create_connection(addr(proxy))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"\x05\x01\x00" + request(target))
    if exact(c, 2) != b"\x05\x00":
        sys.exit("the proxy wants a login")
    head = exact(c, 4)
    if head[1] != 0:
        sys.exit(f"the proxy refused: reply {head[1]}")
    exact(c, (4 if head[3] == 1 else 16) + 2)
    return c


def send(proxy, target, path):
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    c = through(proxy, target)
    with open(path, "rb") as f:
        sent = 0
        while sent < size:
            n = os.sendfile(c.fileno(), f.fileno(), sent, size - sent)
            if n == 0:
                break
            sent += n
    c.shutdown(socket.SHUT_WR)
    (count,) = struct.unpack("<Q", exact(c, 8))
    secs = time.perf_counter() - t0
    if count != size:
        sys.exit(f"the sink got {count} of {size} bytes")
    print(f"{secs:.6f} {count}")


def setup(proxy, target, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        c = socket.create_connection(addr(target)) if proxy == "-" else through(proxy, target)
        times.append(time.perf_counter_ns() - t0)
        c.close()
    times.sort()
    print(f"{times[len(times) // 2] / 1000:.1f} {times[int(len(times) * 0.99)] / 1000:.1f}")


async def one(proxy, target, i, gate):
    host, port = addr(proxy)
    try:
        r, w = await asyncio.open_connection(host, port)
        w.write(b"\x05\x01\x00" + request(target))
        head = await r.readexactly(2 + 4)
        ok = head[:2] == b"\x05\x00" and head[3] == 0
        if ok:
            await r.readexactly((4 if head[5] == 1 else 16) + 2)
    finally:
        gate["open"] += 1
        if gate["open"] == gate["n"]:
            gate["ready"].set()
    if not ok:
        return False
    await gate["ready"].wait()  # every connection open at once before any data moves
    msg = i.to_bytes(4, "big") * 1024
    w.write(msg)
    ok = await r.readexactly(len(msg)) == msg
    w.close()
    return ok


async def many(proxy, target, n):
    gate = {"open": 0, "n": n, "ready": asyncio.Event()}
    t0 = time.perf_counter()
    tasks = [one(proxy, target, i, gate) for i in range(n)]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    intact = sum(1 for x in results if x is True)
    print(f"{time.perf_counter() - t0:.3f} {intact}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "setup":
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "many":
        asyncio.run(many(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        sys.exit(__doc__)
