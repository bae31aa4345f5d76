#!/usr/bin/env python3
"""Runs CMD on a pseudo-terminal and types each CHUNK in turn (escapes such as \\t and \\r
are understood), pausing between chunks; prints everything the terminal showed.

    pty_type.py CHUNK... -- CMD [ARG...]
"""
import os
import pty
import select
import sys
import time

split = sys.argv.index("--")
chunks = [c.encode().decode("unicode_escape").encode() for c in sys.argv[1:split]]
cmd = sys.argv[split + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen = b""


def pump(seconds):
    global seen
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            seen += data
    return True


pump(1.0)
for c in chunks:
    os.write(fd, c)
    pump(0.3)
# Until the program ends (60 s at most).
end = time.time() + 60
while time.time() < end and pump(0.2):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
