#!/usr/bin/env python3
"""A foreign publisher on a taojie NATS backplane, speaking the NATS protocol over a raw socket:
malformed posts, a line too long, a flood from one sender, then one good line.

Usage: nats_pub.py nats://127.0.0.1:PORT ROOM
"""
import socket
import sys

url, room = sys.argv[1], sys.argv[2]
host, port = url.removeprefix("nats://").rsplit(":", 1)
room_hex = room.encode().hex()
line_subject = f"taojie.room.line.{room_hex}"
FROM = "0123456789abcdef"


def post(lines, count=None, subject=line_subject):
    body = b"".join(lines)
    n = len(lines) if count is None else count
    return subject, f"TJ1 {FROM} {n}\n".encode() + body


messages = [
    (line_subject, b"garbage"),
    post([b"<mallory> bad escape \x1b[2J\n"]),
    post([b"<mallory> bad count\n"], count=2),
    post([b"*** bad fake notice\n"]),
    post([b"<mallory> " + b"x" * 300 + b"\n"]),
    post([b"<mallory> bad utf8 \xff\n"]),
    post([b"<mallory> bad unfinished"]),
    ("taojie.room.line.zz", post([b"<mallory> bad room\n"])[1]),
    (f"taojie.room.note.{room_hex}", f"TJ1 {FROM} 1\n<mallory> bad note shape\n".encode()),
]
messages += [post([f"<mallory> flood {i}\n".encode()]) for i in range(50)]
messages.append(post([b"<trent> last\n"]))

with socket.create_connection((host, int(port)), timeout=10) as s:
    s.recv(4096)  # INFO
    out = bytearray(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    for subject, payload in messages:
        out += f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\n"
    out += b"PING\r\n"
    s.sendall(out)
    got = b""
    while b"PONG" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("NATS closed the connection")
        got += chunk
    if b"-ERR" in got:
        sys.exit(f"NATS refused: {got!r}")
print(f"published {len(messages)} messages")
