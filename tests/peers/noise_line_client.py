#!/usr/bin/env python3
"""A chat member over taojie's protocol 2, written without taojie (tests/peers/tj2.py): the
handshake with the shared key, the hello for "chat", then lines both ways, as nc is for the
plain broker. Lines from stdin go to the broker; lines from it go to stdout as they come.
At the end of stdin it sends the end-of-stream record and exits once the broker has closed.

    noise_line_client.py HOST:PORT KEYFILE
"""
import sys
import threading

sys.path.insert(0, __import__('os').path.dirname(__file__))
import tj2  # noqa: E402

addr, keyfile = sys.argv[1], sys.argv[2]
ch = tj2.connect(addr, tj2.read_key(keyfile))
ch.hello('chat')


def relay_out():
    while True:
        line = ch.read_line()
        if not line:
            break
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


reader = threading.Thread(target=relay_out)
reader.start()
for line in sys.stdin.buffer:
    ch.send(line)
ch.end()
reader.join(120)
sys.exit(1 if reader.is_alive() else 0)
