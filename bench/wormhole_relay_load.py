"""`taojie serve relay` under idle load: N mailbox clients that bound, claimed a nameplate and
opened its mailbox (senders waiting for their receiver), then the code exchange of new pairs
while they wait — from the first client's connect to both sides holding the other's `pake`
message, the part of `wormhole send`/`receive` the mailbox server is in.

Reports the relay's VmRSS before and after the idle clients, and the median and worst pair
time of PAIRS pairs. Clients come from 127.0.1.1, 127.0.1.2, ... (100 each, the relay's
default channels per address), all on loopback.

Usage: python3 bench/wormhole_relay_load.py [--clients N] [--pairs P] [--binary PATH]
"""

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import subprocess
import time


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return 0


class Ws:
    """A minimal WebSocket client: text frames out (masked), frames in."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, host, port, src):
        reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /v1 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer)

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.w.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def recv(self):
        while True:
            b0, b1 = await self.r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.r.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.r.readexactly(8), "big")
            data = await self.r.readexactly(n)
            if b0 & 0x0F in (1, 2):
                msg = json.loads(data)
                if msg["type"] != "ack":
                    return msg

    async def expect(self, mtype):
        while True:
            m = await self.recv()
            if m["type"] == mtype:
                return m
            if m["type"] == "error":
                raise RuntimeError(m)


def src_addr(i):
    k = i // 100
    return f"127.0.{1 + k // 250}.{1 + k % 250}"


async def idle_client(host, port, i, appid):
    ws = await Ws.connect(host, port, src_addr(i))
    await ws.expect("welcome")
    ws.send({"type": "bind", "appid": appid, "side": f"{i:010x}"})
    ws.send({"type": "claim", "nameplate": str(100000 + i)})
    m = await ws.expect("claimed")
    ws.send({"type": "open", "mailbox": m["mailbox"]})
    ws.send({"type": "add", "phase": "pake", "body": "00" * 33})
    await ws.expect("message")
    return ws


async def pair(host, port, appid):
    t0 = time.perf_counter()
    a = await Ws.connect(host, port, "127.0.0.1")
    await a.expect("welcome")
    a.send({"type": "bind", "appid": appid, "side": "aaaaaaaaaa"})
    a.send({"type": "allocate"})
    nameplate = (await a.expect("allocated"))["nameplate"]
    a.send({"type": "claim", "nameplate": nameplate})
    mailbox = (await a.expect("claimed"))["mailbox"]
    a.send({"type": "open", "mailbox": mailbox})
    a.send({"type": "add", "phase": "pake", "body": "aa" * 33})
    b = await Ws.connect(host, port, "127.0.0.1")
    await b.expect("welcome")
    b.send({"type": "bind", "appid": appid, "side": "bbbbbbbbbb"})
    b.send({"type": "claim", "nameplate": nameplate})
    await b.expect("claimed")
    b.send({"type": "open", "mailbox": mailbox})
    b.send({"type": "add", "phase": "pake", "body": "bb" * 33})

    async def other_side(ws, side):
        while True:
            m = await ws.expect("message")
            if m["side"] != side:
                return

    await asyncio.wait_for(asyncio.gather(other_side(a, "aaaaaaaaaa"), other_side(b, "bbbbbbbbbb")), 10)
    elapsed = time.perf_counter() - t0
    for ws, side in ((a, "aaaaaaaaaa"), (b, "bbbbbbbbbb")):
        ws.send({"type": "release", "nameplate": nameplate})
        ws.send({"type": "close", "mailbox": mailbox, "mood": "happy"})
        ws.w.close()
    return elapsed


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--pairs", type=int, default=30)
    p.add_argument("--binary", default="target/release/taojie")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    relay = subprocess.Popen([args.binary, "serve", "relay", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = relay.stdout.readline().split()
        host, port = line[2].rsplit(":", 1)
        port = int(port)
        appid = "bench/relay"
        before = vm(relay.pid, "VmRSS")
        empty = [await pair(host, port, appid) for _ in range(args.pairs)]
        idle = []
        t0 = time.perf_counter()
        for start in range(0, args.clients, 500):
            idle += await asyncio.gather(*(idle_client(host, port, i, appid)
                                           for i in range(start, min(start + 500, args.clients))))
        opened = time.perf_counter() - t0
        rss, hwm = vm(relay.pid, "VmRSS"), vm(relay.pid, "VmHWM")
        loaded = [await pair(host, port, appid) for _ in range(args.pairs)]
        ms = lambda xs: (1000 * statistics.median(xs), 1000 * max(xs))
        print(f"relay VmRSS {before} MiB before, {rss} MiB with {len(idle)} idle mailbox clients "
              f"(VmHWM {hwm} MiB; {opened:.1f} s to open them)")
        print("code exchange of a new pair: median %.1f ms, worst %.1f ms with no other client" % ms(empty))
        print("code exchange of a new pair: median %.1f ms, worst %.1f ms beside the idle clients" % ms(loaded))
        for ws in idle:
            ws.w.close()
    finally:
        relay.kill()
        relay.wait()


if __name__ == "__main__":
    asyncio.run(main())
