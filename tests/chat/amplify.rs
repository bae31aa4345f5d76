//! The UDP hub under forged registrations: a raw socket in one network namespace registers
//! 4,000 forged source addresses with the hub in another, then sends messages; the hub must
//! send at most 2 bytes for each byte it receives (counted on its link, headers and all),
//! while taojie's own client, which proved its address, still gets every message.
//!
//! Network rule: everything travels between two namespaces this test creates (a veth pair,
//! 10.216.0.0/24) and removes; the forged sources are in 10.217.0.0/16, routed to the
//! attacker's namespace, which drops what the hub sends them.
use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{Server, bin, peer_script, run_program};
use super::{Client, WAIT};

/// Two namespaces joined by a veth pair; deleted on drop.
struct Pair {
    hub: String,
    attacker: String,
}

impl Pair {
    fn new() -> Option<Pair> {
        if !super::common::need::root() || !super::common::need::tools(&["ip", "python3"]) {
            return None;
        }
        let base = format!("tjhub-{}", std::process::id());
        let pair = Pair {
            hub: format!("{base}-h"),
            attacker: format!("{base}-a"),
        };
        for ns in [&pair.hub, &pair.attacker] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            &pair.hub,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pair.attacker,
        ]);
        ip(&[
            "-n",
            &pair.hub,
            "addr",
            "add",
            "10.216.0.1/24",
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            &pair.attacker,
            "addr",
            "add",
            "10.216.0.2/24",
            "dev",
            "eth0",
        ]);
        for ns in [&pair.hub, &pair.attacker] {
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        ip(&[
            "-n",
            &pair.hub,
            "route",
            "add",
            "10.217.0.0/16",
            "via",
            "10.216.0.2",
        ]);
        Some(pair)
    }

    /// (received, sent) bytes on the hub's link, Ethernet headers included.
    fn hub_counters(&self) -> (u64, u64) {
        let out = Command::new("ip")
            .args(["-n", &self.hub, "-s", "-j", "link", "show", "eth0"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stats = &v[0]["stats64"];
        (
            stats["rx"]["bytes"].as_u64().unwrap(),
            stats["tx"]["bytes"].as_u64().unwrap(),
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.hub, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn forged_registrations_get_at_most_two_bytes_out_per_byte_in() {
    let Some(pair) = Pair::new() else {
        return;
    };
    let hub = Server::start_program(
        "ip",
        &[
            "netns",
            "exec",
            &pair.hub,
            bin(),
            "serve",
            "chat",
            "--udp",
            "10.216.0.1:0",
        ],
        1,
        &[],
    );
    let addr = hub.addr("chat", "udp");
    let port = addr.rsplit_once(':').unwrap().1.to_string();

    // taojie's client, at the attacker's real address: it proves its address, so it gets
    // every message however many forged peers there are.
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &pair.attacker,
        bin(),
        "chat",
        &addr,
        "--name",
        "dora",
        "--udp",
    ]);
    let mut dora = Client::spawn(cmd);
    // Its first message reaching a seed-style listener shows it is on the hub's list.
    let probe = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
hub = (sys.argv[1], int(sys.argv[2]))
for _ in range(15):
    s.sendto(b'', hub)
    try:
        msg, _ = s.recvfrom(2048)
        if msg.startswith(b'dora: ready'):
            print('ok'); break
    except socket.timeout:
        pass
"#;
    let waiter = std::thread::spawn({
        let (ns, port) = (pair.attacker.clone(), port.clone());
        move || {
            let args = [
                "netns",
                "exec",
                &ns,
                "python3",
                "-c",
                probe,
                "10.216.0.1",
                &port,
            ];
            run_program("ip", &args, b"", WAIT * 2)
        }
    });
    let deadline = Instant::now() + WAIT;
    while !waiter.is_finished() && Instant::now() < deadline {
        dora.send("ready");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, out, err) = waiter.join().unwrap();
    assert!(
        status.success() && String::from_utf8_lossy(&out).trim() == "ok",
        "dora never reached a listener through the hub: {err}"
    );

    let (rx0, tx0) = pair.hub_counters();
    // 4,000 forged peers: the old hub's table (4,096) took them all, and the sender too.
    let (regs, msgs, size) = (4000, 50, 200);
    let (status, out, err) = run_program(
        "ip",
        &[
            "netns",
            "exec",
            &pair.attacker,
            "python3",
            &peer_script("udp_spoof.py"),
            "10.216.0.1",
            &port,
            &regs.to_string(),
            &msgs.to_string(),
            &size.to_string(),
        ],
        b"",
        WAIT * 4,
    );
    assert!(status.success(), "udp_spoof.py: {err}");
    assert!(
        String::from_utf8_lossy(&out).starts_with("sent "),
        "{out:?}"
    );

    // Wait until the hub has stopped sending (its link quiet for a second), bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = pair.hub_counters();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = pair.hub_counters();
        if now == last || Instant::now() > deadline {
            last = now;
            break;
        }
        last = now;
    }
    let (rx, tx) = (last.0 - rx0, last.1 - tx0);
    let ratio = tx as f64 / rx as f64;
    eprintln!(
        "hub link under {regs} forged registrations and {msgs} messages of {size} bytes: {rx} bytes in, {tx} bytes out, {ratio:.2} out per byte in"
    );
    assert!(
        ratio <= 2.0,
        "the hub sent {tx} bytes for {rx} received ({ratio:.1} per byte)"
    );
    // dora got the last forged message: the hub relayed to proven peers throughout.
    dora.wait_for("the last forged message", |l| {
        l.starts_with(&format!("mallory: {} x", msgs - 1))
    });
    drop(hub);
}
