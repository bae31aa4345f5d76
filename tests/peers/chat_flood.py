"""The flood of issue 12, against a running broker: one client sends LINES lines in one go,
READERS clients read as fast as they can, one client never reads, and (with --slow-rate) one
more reads at a fixed number of lines a second. Prints one JSON report:

  {"readers": [lines each got in order], "ordered": bool, "dropped_after": seconds from the
   start of the flood to the silent client's drop notice (as a reader saw it), "sender_ok":
   whether the sender was never dropped and got its /who answer at the end,
   "slow_dropped_after": ..., "max_rss_kib": the broker's peak resident set}

    python3 chat_flood.py HOST:PORT BROKER_PID [--lines N] [--readers N] [--slow-rate R]
"""
import argparse, json, os, socket, threading, time

ap = argparse.ArgumentParser()
ap.add_argument('addr')
ap.add_argument('pid', type=int)
ap.add_argument('--lines', type=int, default=100_000)
ap.add_argument('--readers', type=int, default=3)
ap.add_argument('--slow-rate', type=float, default=0.0)
ap.add_argument('--limit', type=float, default=120.0)
ap.add_argument('--wait-drops', type=float, default=20.0)
a = ap.parse_args()
host, port = a.addr.rsplit(':', 1)
start = time.monotonic()
deadline = start + a.limit


def join(name, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port)))
    s.settimeout(max(1.0, deadline - time.monotonic()))
    f = s.makefile('rb')
    s.sendall(('/nick %s\n' % name).encode())
    while True:  # until our own rename comes back
        line = f.readline()
        if not line or line.rstrip().endswith(b'is now known as ' + name.encode()):
            break
    return s, f


def rss():
    try:
        for line in open('/proc/%d/status' % a.pid):
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


readers = [join('r%d' % i) for i in range(a.readers)]
silent = join('silent', rcvbuf=4096)
slow = join('slow', rcvbuf=4096) if a.slow_rate else None
sender = join('sender')
got = [0] * a.readers
ordered = [True] * a.readers
seen_drop = {}
baseline = rss()
max_rss = [baseline]
t0 = [None]


def read(i):
    s, f = readers[i]
    while got[i] < a.lines and time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        if line.startswith(b'<sender> '):
            n = int(line[9:15])
            if n != got[i]:
                ordered[i] = False
            got[i] += 1
        elif line.startswith(b'*** ') and b' dropped (not reading)' in line:
            who = line[4:].split(b' ')[0].decode()
            seen_drop.setdefault(who, time.monotonic() - t0[0])


def read_slowly():
    s, f = slow
    while time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        time.sleep(1.0 / a.slow_rate)


threads = [threading.Thread(target=read, args=(i,)) for i in range(a.readers)]
if slow:
    threads.append(threading.Thread(target=read_slowly, daemon=True))
for t in threads:
    t.start()

pad = 'x' * 100
flood = ''.join('%06d %s\n' % (i, pad) for i in range(a.lines)).encode()
t0[0] = time.monotonic()
sent_ok = True


def send():
    global sent_ok
    try:
        sender[0].sendall(flood)
    except OSError:
        sent_ok = False


st = threading.Thread(target=send)
st.start()
while any(t.is_alive() for t in threads[:a.readers]) and time.monotonic() < deadline:
    max_rss[0] = max(max_rss[0], rss())
    time.sleep(0.05)
st.join(max(0.1, deadline - time.monotonic()))
# Every line is in; the members that do not keep up are dropped later (after --max-lag):
# reader 0 goes on reading for the notices, up to --wait-drops seconds.
want = {'silent'} | ({'slow'} if slow else set())
f = readers[0][1]
until = min(deadline, time.monotonic() + a.wait_drops)
readers[0][0].settimeout(max(0.1, until - time.monotonic()))
while not want <= set(seen_drop) and time.monotonic() < until:
    try:
        line = f.readline()
    except OSError:  # the time is up (a timed-out file object cannot be read again)
        break
    if not line:
        break
    if line.startswith(b'*** ') and b' dropped (not reading)' in line:
        seen_drop.setdefault(line[4:].split(b' ')[0].decode(), time.monotonic() - t0[0])
# The sender is still a member: its /who answer comes back.
sender_ok = sent_ok
try:
    sender[0].sendall(b'/who\n')
    while True:
        line = sender[1].readline()
        if not line or line.startswith(b'*** in lobby'):
            sender_ok = sender_ok and bool(line)
            break
except OSError:
    sender_ok = False
print(json.dumps({
    'readers': got, 'ordered': all(ordered),
    'dropped_after': seen_drop.get('silent'),
    'slow_dropped_after': seen_drop.get('slow'),
    'sender_ok': sender_ok, 'max_rss_kib': max_rss[0],
    'rss_before_kib': baseline,
}))
