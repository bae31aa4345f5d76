#!/usr/bin/env python3
"""The encrypted netcat pipe (taojie connect/listen --key), written without taojie
(tests/peers/tj2.py): the protocol-2 handshake with the shared key, the hello for "pipe",
then stdin to the peer and the peer's bytes to stdout, with half-close: the end of stdin is
the end-of-stream record, and the peer's end record ends the output. Exits 0 once both
directions have ended; a connection cut without an end record is an error (status 1).

    noise_pipe.py connect HOST:PORT KEYFILE
    noise_pipe.py listen KEYFILE        binds 127.0.0.1:0; says `listen tcp ADDR` on stderr
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import tj2  # noqa: E402

mode = sys.argv[1]
if mode == 'connect':
    ch = tj2.connect(sys.argv[2], tj2.read_key(sys.argv[3]))
else:
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    srv.settimeout(60)
    sys.stderr.write('listen tcp %s:%d\n' % srv.getsockname())
    sys.stderr.flush()
    conn, _ = srv.accept()
    conn.settimeout(60)
    ch = tj2.Channel.accept(conn, tj2.read_key(sys.argv[2]))
ch.hello('pipe')

failed = []


def copy_in():
    stdin = sys.stdin.buffer.raw
    while True:
        data = os.read(stdin.fileno(), 256 * 1024)
        if not data:
            break
        ch.send(data)
    ch.end()


sender = threading.Thread(target=copy_in)
sender.start()
out = sys.stdout.buffer
try:
    while True:
        data = ch.read_some()
        if not data:
            break
        out.write(data)
    out.flush()
except EOFError as e:
    failed.append(str(e))
sender.join(120)
if failed or sender.is_alive():
    sys.stderr.write('noise_pipe: %s\n' % (failed or ['stdin not finished']))
    sys.exit(1)
