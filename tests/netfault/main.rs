//! taojie over a bad network: servers in one network namespace, clients in another, joined
//! by a veth link that loses packets, is rate-limited, goes down, or resets connections.
//!
//! `netns.rs` makes the link and its faults; `files.rs` puts and gets 16 MiB through them;
//! `exec.rs` runs commands whose output must arrive whole or end with one clear error line;
//! `chat.rs` keeps a conversation in order. Every test ends by checking that the server
//! holds no connection and no child process more than before. The tests need root, `ip`,
//! `nft` and `tc` (`common::need`: a failure under CI, a counted skip elsewhere).
mod chat;
#[path = "../common/mod.rs"]
mod common;
mod exec;
mod files;
mod netns;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{Proc, Server, bin, run_program};
use netns::{Link, SERVER_IP};

/// A link, a key both sides hold, and a scratch directory.
pub struct Net {
    /// The namespaces and their faults.
    pub link: Link,
    dir: tempfile::TempDir,
}

impl Net {
    /// `None` when the machine cannot make namespaces (`need` has reported why).
    pub fn new() -> Option<Net> {
        let link = Link::new()?;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "netfault test key 0123456789abcdef\n").unwrap();
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&key, owner_only).unwrap();
        Some(Net { link, dir })
    }

    /// A path in the scratch directory.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The key file's path.
    pub fn key(&self) -> String {
        self.p("key").to_str().unwrap().to_string()
    }

    /// Starts `taojie serve SERVICE --listen SERVER_IP:0 --key KEY EXTRA` in the server's
    /// namespace (`ip netns exec` execs, so the PID is the server's) and waits for its line.
    pub fn serve(&self, service: &str, extra: &[&str]) -> Served {
        let listen = format!("{SERVER_IP}:0");
        let key = self.key();
        let mut args = vec![
            "netns",
            "exec",
            &self.link.server_ns,
            bin(),
            "serve",
            service,
        ];
        args.extend(["--listen", &listen, "--key", &key]);
        args.extend(extra);
        let server = Server::start_program("ip", &args, 1, &[]);
        let addr = server.addr(service, "tcp");
        let fds = fd_count(server.child.id());
        Served { server, addr, fds }
    }

    /// `ip netns exec CLIENT_NS taojie ARGS...` as arguments of `ip`.
    fn client_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["netns", "exec", &self.link.client_ns, bin()];
        all.extend(args);
        all
    }

    /// Runs a taojie client in the clients' namespace to the end (killed after `limit`).
    pub fn run(&self, args: &[&str], limit: Duration) -> (ExitStatus, Vec<u8>, String) {
        run_program("ip", &self.client_args(args), b"", limit)
    }

    /// Starts a taojie client in the clients' namespace.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        Proc::spawn("ip", &self.client_args(args))
    }
}

/// A server in the server's namespace and what it held when it started.
pub struct Served {
    /// The process.
    pub server: Server,
    /// Its announced address.
    pub addr: String,
    /// Its open descriptors once it was listening.
    pub fds: usize,
}

impl Served {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Waits (bounded) until the server is back to the descriptors it started with and has
    /// no child process; fails the test naming what it still holds.
    pub fn assert_no_leaks(&self, limit: Duration) {
        let pid = self.server.child.id();
        let deadline = Instant::now() + limit;
        loop {
            let (fds, kids) = (fd_count(pid), children(pid));
            if fds <= self.fds && kids.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "after {limit:?} the server still holds {fds} descriptors (started with {}) \
                     and child processes {kids:?}",
                    self.fds
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Child processes of a process (over all its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|w| w.parse::<u32>().ok()));
        }
    }
    out
}

/// Waits (up to `limit`) until `path` holds at least `n` bytes.
pub fn wait_size(path: &Path, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < n {
        assert!(
            Instant::now() < deadline,
            "{} did not reach {n} bytes in {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
