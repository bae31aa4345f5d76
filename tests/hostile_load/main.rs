//! Hostile load against the real binary (issue 14): junk connections while nobody reads the
//! server's standard error (`log_flood.rs`), and thousands of half-open handshakes, slowloris
//! clients and floods from one address against every keyed service (`preauth.rs`), and the
//! error lines a client prints when the connection breaks (`errors.rs`). Every
//! attacker here connects from a loopback address of its own (127.0.0.0/8), so per-address
//! caps can be tested apart from the total.
//!
//! The floods are a test binary of their own, so that they never share the machine with the
//! other suites' tests (cargo runs test binaries one after another), and each test takes
//! [`one_at_a_time`], so that they never share it with each other either. No test here puts an
//! upper bound on a time: how fast a real client gets in beside a flood is measured by
//! `bench/halfopen.py` (BENCHMARKS.md), and the deadlines here only end a hang.
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod log_flood;
mod preauth;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

/// Held for the whole of each test: the tests of this binary run one after another.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static FLOOD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding it poisons it; the next still runs alone.
    FLOOD.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temp dir with a shared key in it.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), format!("{}\n", "5a".repeat(32))).unwrap();
        Keys { dir }
    }

    fn key(&self) -> String {
        self.dir.path().join("k").display().to_string()
    }
}

/// A server whose standard error is a pipe the test holds (and may leave unread).
struct Spawned {
    child: Child,
    /// `(service, proto, address)` lines from standard output.
    lines: Vec<(String, String, String)>,
    stderr: Option<ChildStderr>,
}

impl Spawned {
    /// Starts `taojie ARGS` and waits (10 s at most) for `n` address lines on stdout.
    fn start(args: &[&str], n: usize) -> Spawned {
        Spawned::start_with_env(args, n, &[])
    }

    /// Like [`Spawned::start`], with extra environment variables.
    fn start_with_env(args: &[&str], n: usize, env: &[(&str, &str)]) -> Spawned {
        let mut child = crate::common::command(common::bin())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start taojie");
        let rx = common::line_channel(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("taojie {args:?} announced {} of {n} sockets", lines.len());
            };
            let p: Vec<&str> = line.splitn(3, ' ').collect();
            lines.push((p[0].into(), p[1].into(), p[2].into()));
        }
        let stderr = child.stderr.take();
        Spawned {
            child,
            lines,
            stderr,
        }
    }

    fn addr(&self, service: &str) -> SocketAddr {
        let (_, _, a) = self
            .lines
            .iter()
            .find(|(s, _, _)| s == service)
            .unwrap_or_else(|| panic!("no {service} line in {:?}", self.lines));
        a.parse().unwrap()
    }

    /// Starts reading standard error: its lines from now on.
    fn read_stderr(&mut self) -> mpsc::Receiver<String> {
        common::line_channel(self.stderr.take().expect("stderr taken already"))
    }

    /// The server's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `i`-th attacker address: 127.(base).x.y, never 127.0.0.1 (the real client's).
fn attacker(base: u8, i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, base, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// A TCP connection to `to` from the address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {to} from {from}: {e}"));
    s.into()
}

/// Raises this process's soft limit on open files to the hard limit; returns it.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    #[allow(unsafe_code)]
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// A real client's way in: taojie's own Noise handshake with the shared key, from
/// 127.0.0.1. Returns how long it took to be let in (for the log; bounded: 60 s, a hang).
fn real_handshake(to: SocketAddr, key: &str) -> Result<Duration, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = taojie::secure::ClientAuth::Psk(
        taojie::auth::Key::load(std::path::Path::new(key)).unwrap(),
    );
    rt.block_on(async {
        let start = Instant::now();
        let attempt = async {
            let stream = tokio::net::TcpStream::connect(to).await?;
            taojie::secure::connect(stream, &auth)
                .await
                .map_err(std::io::Error::other)
        };
        match tokio::time::timeout(Duration::from_secs(60), attempt).await {
            Err(_) => Err("the handshake hung: not let in within 60 s".into()),
            Ok(Err(e)) => Err(format!("handshake failed: {e}")),
            Ok(Ok(_secure)) => Ok(start.elapsed()),
        }
    })
}

/// Runs `taojie exec ADDR --key KEY -- echo served`, bounded (60 s: a hang); returns the
/// time it took, for the log.
fn exec_echo(to: SocketAddr, key: &str) -> Duration {
    let start = Instant::now();
    let (status, out, err) = common::run_with_input(
        &[
            "exec",
            &to.to_string(),
            "--key",
            key,
            "--",
            "echo",
            "served",
        ],
        b"",
        Duration::from_secs(60),
    );
    assert!(status.success(), "exec failed: {err}");
    assert_eq!(out, b"served\n");
    start.elapsed()
}
