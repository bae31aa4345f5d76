"""Shared by bench/run.py and bench/idle_conns.py: building taojie and the C reference,
starting each echo server on a loopback port 0, waiting for the address it prints, reading its
CPU time and memory from /proc, and stopping it by PID.

Only processes started here are ever signalled, by their own PID (and, for socat, the PIDs of
the children it forked for our connections); every wait is bounded.
"""

import atexit
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
PEERS_DIR = os.path.join(ROOT, "bench", "peers")
C_SRC = os.path.join(PEERS_DIR, "epoll_echo.c")
C_BIN = os.path.join(OUT, "epoll_echo")
TAOJIE = os.path.join(ROOT, "target", "release", "taojie")
CLK_TCK = os.sysconf("SC_CLK_TCK")

_live = {}  # pid -> Server, for the exit handler


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(taojie=True):
    """Builds taojie in release mode and the C reference with cc -O2."""
    os.makedirs(OUT, exist_ok=True)
    if taojie:
        log("building taojie (cargo build --release) ...")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    log("building the C reference (cc -O2) ...")
    subprocess.run(["cc", "-O2", "-Wall", "-o", C_BIN, C_SRC], check=True)


def peer_commands(taojie_bin=TAOJIE):
    """Every echo server the scripts know: name -> (argv, answers in upper case?).

    socat's argv has a {port} placeholder: it cannot bind port 0 and say which port it got.
    """
    py = sys.executable or "python3"
    return {
        "c-epoll": ([C_BIN, "127.0.0.1:0"], False),
        "taojie": ([taojie_bin, "serve", "echo", "--listen", "127.0.0.1:0"], False),
        "socat": (["socat", "TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1", "PIPE"], False),
        "thread_echo.py": ([py, os.path.join(PEERS_DIR, "thread_echo.py"), "127.0.0.1:0"], False),
        "c-epoll --upper": ([C_BIN, "--upper", "127.0.0.1:0"], True),
        "taojie --upper": (
            [taojie_bin, "serve", "echo", "--listen", "127.0.0.1:0", "--upper"],
            True,
        ),
        "seed socketserver": (
            [py, os.path.join(PEERS_DIR, "seed_socketserver_upper.py"), "127.0.0.1:0"],
            True,
        ),
        # Opt-in (see OPT_IN): taojie on a one-worker tokio runtime, the C reference's shape.
        "taojie 1-worker": (
            ["env", "TOKIO_WORKER_THREADS=1", taojie_bin, "serve", "echo", "--listen", "127.0.0.1:0"],
            False,
        ),
    }


#: Peers run only when named with --peers.
OPT_IN = {"taojie 1-worker"}


def free_port():
    """A port nothing listens on right now (socat must be told one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One running echo server: its Popen, the address it listens on, its stderr log."""

    def __init__(self, name, argv, extra_args=(), timeout=10.0):
        self.name = name
        self.errlog = tempfile.TemporaryFile()
        if "{port}" in " ".join(argv):
            self._start_socat(argv, timeout)
        else:
            self._start_announcing(list(argv) + list(extra_args), timeout)

    def _spawn(self, argv):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errlog
        )
        self.pid = self.proc.pid
        _live[self.pid] = self

    def _start_announcing(self, argv, timeout):
        """Starts a server that prints its address; the address is the line's last word."""
        self._spawn(argv)
        deadline = time.monotonic() + timeout
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise RuntimeError(f"{self.name}: no address line within {timeout:.0f} s")
            chunk = os.read(fd, 256)
            if not chunk:
                self.stop()
                raise RuntimeError(f"{self.name}: exited before binding: {self.stderr_tail()}")
            line += chunk
        host, _, port = line.split()[-1].decode().rpartition(":")
        self.addr = (host.strip("[]"), int(port))

    def _start_socat(self, argv, timeout):
        """socat cannot report a port: pick a free one, retry if someone takes it first."""
        for _attempt in range(3):
            port = free_port()
            self._spawn([a.replace("{port}", str(port)) for a in argv])
            self.addr = ("127.0.0.1", port)
            if self._wait_accepting(timeout):
                return
            self.stop()
        raise RuntimeError(f"{self.name}: never accepted a connection: {self.stderr_tail()}")

    def _wait_accepting(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(self.addr, timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    @property
    def addr_str(self):
        return f"{self.addr[0]}:{self.addr[1]}"

    def alive(self):
        return self.proc.poll() is None

    def children(self):
        """PIDs of the processes this server forked (socat forks one per connection)."""
        kids = []
        try:
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{tid}/children") as f:
                    kids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return kids

    def wait_children_gone(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while self.children() and time.monotonic() < deadline:
            time.sleep(0.02)

    def cpu_seconds(self):
        """User + system time of the server, its threads and the children it has reaped."""
        return proc_cpu_seconds(self.pid, children=True)

    def status(self, field):
        """A field of /proc/PID/status in KiB (VmRSS, VmHWM) or as a count (Threads)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stderr_tail(self, n=300):
        self.errlog.seek(0)
        text = self.errlog.read().decode(errors="replace").strip()
        return text[-n:] or "(no stderr)"

    def stop(self):
        """SIGTERM, up to 5 s of grace, then SIGKILL; the same for any leftover socat child."""
        kids = self.children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdout.close()
        _live.pop(self.pid, None)


def proc_cpu_seconds(pid, children=False):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # fields[11..14] are utime, stime, cutime, cstime (stat fields 14-17)
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def machine_busy_seconds():
    """CPU seconds spent busy by the whole machine since boot (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK_TCK


def tcp_counters():
    """The kernel's listen-queue overflow and SYN-cookie counters (all sockets, since boot)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
            keys = ("ListenOverflows", "SyncookiesSent", "SyncookiesFailed")
            return {k: table.get(k, 0) for k in keys}
    return {}


def stop_all():
    for server in list(_live.values()):
        try:
            server.stop()
        except Exception as e:  # keep cleaning up the others
            log(f"stopping {server.name} (pid {server.pid}): {e}")


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    """Stops every server started here when the script exits, however it exits."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def machine_summary():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Linux {os.uname().release}"
