"""A local user racing the files server (tests/files/race.rs): swaps a directory inside the
root with a symbolic link to a directory outside it, renameat2(RENAME_EXCHANGE), in a loop
for SECONDS seconds, then leaves both as they were and prints the number of swaps.

    swap_race.py DIR LINK SECONDS        (run as an unprivileged user, e.g. via setpriv)"""
import ctypes
import os
import sys
import time

AT_FDCWD = -100
RENAME_EXCHANGE = 2

a, b, seconds = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2]), float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)


def swap():
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit('renameat2: ' + os.strerror(ctypes.get_errno()))


print('swapping as uid %d' % os.getuid(), file=sys.stderr, flush=True)
n = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    swap()
    n += 1
if n % 2:
    swap()
    n += 1
print(n, flush=True)
