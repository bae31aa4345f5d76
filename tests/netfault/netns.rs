//! Two network namespaces joined by a veth pair, and the faults put on that link: random
//! loss (nftables `numgen random`), a rate limit (`tc tbf`), the link down, and TCP resets
//! (nftables `reject with tcp reset`). The pair is removed on drop, whatever the test did.
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::common::need;

/// Server side's address inside its namespace.
pub const SERVER_IP: &str = "10.231.0.1";
/// Client side's address inside its namespace.
pub const CLIENT_IP: &str = "10.231.0.2";

/// A server namespace and a client namespace joined by one veth link.
pub struct Link {
    /// The server's namespace.
    pub server_ns: String,
    /// The clients' namespace.
    pub client_ns: String,
    /// The veth end in the server's namespace.
    pub server_dev: String,
    /// The veth end in the clients' namespace.
    pub client_dev: String,
}

/// Runs `ip`/`nft`/`tc` and says what failed.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) {
    if let Err(e) = run(program, args) {
        panic!("{e}");
    }
}

impl Link {
    /// Creates the pair, or returns `None` when this machine cannot (not root, no `ip`, `nft`
    /// or `tc`): a skip that `need` reports, and a failure under CI.
    pub fn new() -> Option<Link> {
        static N: AtomicU32 = AtomicU32::new(0);
        if !need::root() || !need::tools(&["ip", "nft", "tc"]) {
            return None;
        }
        let tag = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let link = Link {
            server_ns: format!("tjnf-s{tag}"),
            client_ns: format!("tjnf-c{tag}"),
            server_dev: format!("tjs{tag}"),
            client_dev: format!("tjc{tag}"),
        };
        if let Err(e) = run("ip", &["netns", "add", &link.server_ns]) {
            need::unmet(&format!("network namespaces ({e})"));
            return None;
        }
        // From here on, drop removes whatever was made.
        must("ip", &["netns", "add", &link.client_ns]);
        must(
            "ip",
            &[
                "link",
                "add",
                &link.server_dev,
                "netns",
                &link.server_ns,
                "type",
                "veth",
                "peer",
                "name",
                &link.client_dev,
                "netns",
                &link.client_ns,
            ],
        );
        for (ns, dev, ip) in [
            (&link.server_ns, &link.server_dev, SERVER_IP),
            (&link.client_ns, &link.client_dev, CLIENT_IP),
        ] {
            must(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev],
            );
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        Some(link)
    }

    /// `ip netns exec NS PROGRAM` as a prefix: the program and its arguments follow.
    pub fn exec_in(ns: &str) -> Vec<String> {
        vec!["netns".into(), "exec".into(), ns.into()]
    }

    /// Drops `percent` % of the packets at random, each way, on the clients' end. Each side
    /// sends wire-sized segments first: veth otherwise passes 64 KiB offload super-packets,
    /// and 2 % of a few hundred of those is not the loss of a real link.
    pub fn lose(&self, percent: u32) {
        for (ns, dev) in [
            (&self.server_ns, &self.server_dev),
            (&self.client_ns, &self.client_dev),
        ] {
            must("ip", &["-n", ns, "link", "set", dev, "gso_max_segs", "1"]);
        }
        let rule = format!("numgen random mod 100 < {percent} drop");
        let script = format!(
            "table inet loss {{
                chain in {{ type filter hook input priority 0; {rule}; }}
                chain out {{ type filter hook output priority 0; {rule}; }}
            }}"
        );
        self.nft(&self.client_ns, &script);
    }

    /// Limits the link to `rate` (tc syntax, e.g. `40mbit`) in both directions.
    pub fn limit(&self, rate: &str) {
        for (ns, dev) in [
            (&self.server_ns, &self.server_dev),
            (&self.client_ns, &self.client_dev),
        ] {
            must(
                "tc",
                &[
                    "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst",
                    "64kb", "latency", "100ms",
                ],
            );
        }
    }

    /// Takes the clients' end of the link down, or up again.
    pub fn set_up(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        must(
            "ip",
            &[
                "-n",
                &self.client_ns,
                "link",
                "set",
                &self.client_dev,
                state,
            ],
        );
    }

    /// The server's machine gone silent: everything arriving in its namespace, and
    /// everything leaving it, is dropped (the clients' side sees its packets go unanswered).
    pub fn vanish(&self) {
        self.nft(
            &self.server_ns,
            "table inet gone {\n chain in { type filter hook input priority 0; drop; }\n \
             chain out { type filter hook output priority 0; drop; }\n}",
        );
    }

    /// Resets every TCP connection to `port` of the server (and refuses new ones) until
    /// [`Link::stop_resets`]: each side's stack answers the other's packets with a reset.
    /// Resets themselves pass, or each side's rule would eat the other's.
    pub fn reset(&self, port: u16) {
        self.nft(
            &self.client_ns,
            &format!(
                "table inet rst {{\n chain in {{ type filter hook input priority 0; \
                 tcp sport {port} tcp flags & rst == 0 reject with tcp reset; }}\n}}"
            ),
        );
        self.nft(
            &self.server_ns,
            &format!(
                "table inet rst {{\n chain in {{ type filter hook input priority 0; \
                 tcp dport {port} tcp flags & rst == 0 reject with tcp reset; }}\n}}"
            ),
        );
    }

    /// Removes the rules of [`Link::reset`].
    pub fn stop_resets(&self) {
        for ns in [&self.client_ns, &self.server_ns] {
            must(
                "ip",
                &["netns", "exec", ns, "nft", "delete", "table", "inet", "rst"],
            );
        }
    }

    /// TCP segments sent and retransmitted so far, both namespaces together
    /// (`/proc/net/snmp` is per namespace).
    pub fn tcp_segments(&self) -> (u64, u64) {
        let (mut out, mut retrans) = (0, 0);
        for ns in [&self.server_ns, &self.client_ns] {
            let snmp = Command::new("ip")
                .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            let tcp: Vec<Vec<&str>> = snmp
                .lines()
                .filter(|l| l.starts_with("Tcp:"))
                .map(|l| l.split_whitespace().collect())
                .collect();
            if let [names, values] = &tcp[..] {
                let get = |k: &str| {
                    let i = names.iter().position(|n| *n == k);
                    i.and_then(|i| values.get(i)?.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                out += get("OutSegs");
                retrans += get("RetransSegs");
            }
        }
        (out, retrans)
    }

    fn nft(&self, ns: &str, script: &str) {
        must("ip", &["netns", "exec", ns, "nft", script]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth, and with it the other end, and
        // its nftables tables and qdiscs; processes still in it keep it alive until they end.
        let _ = run("ip", &["netns", "del", &self.client_ns]);
        let _ = run("ip", &["netns", "del", &self.server_ns]);
    }
}
