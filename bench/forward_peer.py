#!/usr/bin/env python3
"""The two ends of bench/forward.sh's measurements, the same for every relay measured.

  forward_peer.py sink                 accept connections one after another; read each to its
                                       end, answer the byte count (8 bytes) and close.
                                       Prints its port first.
  forward_peer.py send ADDR FILE       send FILE with sendfile(2), half-close, wait for the
                                       sink's count; print "SECONDS BYTES".
  forward_peer.py echo                 echo server (a thread per connection); prints its port.
  forward_peer.py rr ADDR N SIZE       N requests of SIZE bytes, one at a time, each waiting
                                       for its SIZE-byte answer; print "P50_US P99_US".

Both ends move bytes with big buffers, sendfile on the sending side, so the relay between
them is what the figures are about.
"""
import os
import socket
import struct
import sys
import threading
import time


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    print(s.getsockname()[1], flush=True)
    return s


def addr(text):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def sink():
    s = listener()
    buf = bytearray(1 << 20)
    while True:
        c, _ = s.accept()
        total = 0
        while True:
            n = c.recv_into(buf)
            if n == 0:
                break
            total += n
        c.sendall(struct.pack("<Q", total))
        c.close()


def send(to, path):
    size = os.path.getsize(path)
    c = socket.create_connection(addr(to))
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        sent = 0
        while sent < size:
            n = os.sendfile(c.fileno(), f.fileno(), sent, size - sent)
            if n == 0:
                break
            sent += n
    c.shutdown(socket.SHUT_WR)
    got = b""
    while len(got) < 8:
        more = c.recv(8 - len(got))
        if not more:
            sys.exit("the sink closed without a count")
        got += more
    secs = time.perf_counter() - t0
    (count,) = struct.unpack("<Q", got)
    if count != size:
        sys.exit(f"the sink got {count} of {size} bytes")
    print(f"{secs:.6f} {count}")


def echo():
    s = listener()

    def serve(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(65536)
        while True:
            n = c.recv_into(buf)
            if n == 0:
                break
            c.sendall(memoryview(buf)[:n])
        c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def rr(to, n, size):
    c = socket.create_connection(addr(to))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * size
    buf = bytearray(size)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        c.sendall(msg)
        got = 0
        while got < size:
            k = c.recv_into(memoryview(buf)[got:])
            if k == 0:
                sys.exit("the echo server closed")
            got += k
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    p50 = times[len(times) // 2] / 1000
    p99 = times[int(len(times) * 0.99)] / 1000
    print(f"{p50:.1f} {p99:.1f}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sink":
        sink()
    elif cmd == "send":
        send(sys.argv[2], sys.argv[3])
    elif cmd == "echo":
        echo()
    elif cmd == "rr":
        rr(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
