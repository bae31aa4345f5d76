//! `taojie msg` against real peers: the seed's Feiq datagram from a seed-style Python program,
//! taojie members on a LAN of network namespaces, the real iptux, and hostile datagrams.
//!
//! This file holds the shared fixtures: [`Member`] (a `taojie msg listen --json` process and
//! the events it prints) and [`Lab`] (network namespaces joined by veth pairs on a bridge,
//! removed when dropped). `loopback.rs` runs on 127.0.0.0/8 with explicit broadcast
//! addresses; `lan.rs` three members in three namespaces; `iptux.rs` the real iptux;
//! `terminal.rs` `taojie msg chat` on a pseudo-terminal.
//!
//! Network rule: every packet goes to loopback or to namespaces these tests create. Nothing
//! here runs `msg` without `--broadcast` outside a namespace of its own.
#[path = "../common/mod.rs"]
mod common;
mod iptux;
mod lan;
mod loopback;
mod offers;
mod terminal;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, bin, need};
use serde_json::Value;

/// Time limit for an expected event or a process.
const WAIT: Duration = Duration::from_secs(15);

/// A `taojie msg listen --json` process: its address and the events it printed.
pub struct Member {
    pub proc: Proc,
    /// The address it announced (`msg udp ADDR` on stderr).
    pub addr: String,
    /// Lines of stdout already taken by [`Member::wait_event`].
    seen: usize,
}

impl Member {
    /// Starts `PROGRAM ARGS` (taojie, or `ip netns exec NS taojie`) that ends in
    /// `msg listen --json ...` and waits for its address line.
    pub fn start(program: &str, args: &[&str]) -> Member {
        let mut proc = Proc::spawn(program, args);
        let line = proc.wait_stderr("msg udp ", WAIT);
        Member {
            proc,
            addr: line["msg udp ".len()..].trim().to_string(),
            seen: 0,
        }
    }

    /// `taojie msg listen --json ARGS` on the host (loopback addresses only).
    pub fn listen(args: &[&str]) -> Member {
        let mut all = vec!["msg", "listen", "--json"];
        all.extend_from_slice(args);
        Member::start(bin(), &all)
    }

    /// Every JSON event printed so far (stdout lines).
    pub fn events(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.proc.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to [`WAIT`]) for a new event that `pred` accepts, and returns it.
    pub fn wait_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.events();
            for (i, e) in events.iter().enumerate().skip(self.seen) {
                if pred(e) {
                    self.seen = i + 1;
                    return e.clone();
                }
            }
            if Instant::now() >= deadline {
                panic!("no {what} in {WAIT:?}; events: {events:#?}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.proc.more_stdout(left);
        }
    }

    /// Waits for a message whose text is `text`.
    pub fn wait_message(&mut self, text: &str) -> Value {
        self.wait_event(&format!("message {text:?}"), |e| {
            e["event"] == "message" && e["text"] == text
        })
    }

    /// Stops it with SIGTERM (by its PID) and returns its exit status.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe {
            libc::kill(self.proc.child.id() as i32, libc::SIGTERM);
        }
        let status = common::wait_timeout(&mut self.proc.child, WAIT).expect("exit after SIGTERM");
        let events = self.events();
        (status, events)
    }
}

/// Whether this process may create network namespaces (root, and `ip`); `need` reports a
/// skip, or fails the test under CI.
pub fn can_make_namespaces() -> bool {
    need::root() && need::tool("ip")
}

/// Network namespaces that exist only for one test: `hosts` test hosts, each with one veth
/// whose other end is on a bridge in a hub namespace, on the private subnet 10.213.0.0/24.
/// Nothing is created in the host's own namespace; everything is deleted on drop.
pub struct Lab {
    hub: String,
    /// The hosts' namespaces.
    pub hosts: Vec<String>,
}

impl Lab {
    /// Builds the lab; `None` when not root (see [`can_make_namespaces`]).
    pub fn new(tag: &str, hosts: usize) -> Option<Lab> {
        if !can_make_namespaces() {
            return None;
        }
        let base = format!("tjmsg-{}-{tag}", std::process::id());
        let lab = Lab {
            hub: format!("{base}-hub"),
            hosts: (1..=hosts).map(|i| format!("{base}-{i}")).collect(),
        };
        ip(&["netns", "add", &lab.hub]);
        ip(&["-n", &lab.hub, "link", "set", "lo", "up"]);
        ip(&["-n", &lab.hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.hub, "link", "set", "br0", "up"]);
        for (i, ns) in lab.hosts.iter().enumerate() {
            let port = format!("p{}", i + 1);
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", &port, "netns",
                &lab.hub,
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", lab.ip(i)),
                "broadcast",
                "+",
                "dev",
                "eth0",
            ]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &lab.hub, "link", "set", &port, "master", "br0", "up"]);
        }
        Some(lab)
    }

    /// The address of host `i` (from 0).
    pub fn ip(&self, i: usize) -> String {
        format!("10.213.0.{}", i + 1)
    }

    /// The arguments that run `taojie ARGS` inside host `i`.
    pub fn taojie<'a>(&'a self, i: usize, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["netns", "exec", self.hosts[i].as_str(), bin()];
        all.extend_from_slice(args);
        all
    }

    /// `taojie msg listen --json ARGS` inside host `i`.
    pub fn listen(&self, i: usize, args: &[&str]) -> Member {
        let mut all = vec!["msg", "listen", "--json"];
        all.extend_from_slice(args);
        Member::start("ip", &self.taojie(i, &all))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.hub]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `ip ARGS`, panicking with its error output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
