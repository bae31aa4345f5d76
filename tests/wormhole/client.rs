//! The client side of `taojie send` / `taojie receive` beyond the protocol itself: the servers
//! taken from the environment (clients read no config file), direct transit over IPv6, and a
//! mailbox connection that drops mid-exchange and is picked up again.
use std::time::Duration;

use crate::common::bin;
use crate::lab::{Lab, both_ok, nft};
use crate::{LIMIT, fill_file};

/// `TAOJIE_RELAY_URL` and `TAOJIE_TRANSIT_HELPER` stand for `--relay-url` and
/// `--transit-helper` on both commands. Without them the defaults name the public servers,
/// which cannot be reached from a namespace with only `lo`, so the transfer would fail.
#[test]
fn the_servers_come_from_the_environment() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let relay = format!("TAOJIE_RELAY_URL={}", lab.relay_url);
    let transit = format!("TAOJIE_TRANSIT_HELPER={}", lab.transit);
    let env = |args: &[&str]| -> Vec<String> {
        let mut v = vec![relay.clone(), transit.clone(), bin().to_string()];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    };
    let send = env(&["send", "--no-listen", "--text", "from the environment"]);
    let send: Vec<&str> = send.iter().map(String::as_str).collect();
    let mut s = lab.spawn("env", &send, dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let recv = env(&["receive", "--no-listen", &code]);
    let recv: Vec<&str> = recv.iter().map(String::as_str).collect();
    let r = lab.spawn("env", &recv, dir, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert_eq!(r.stdout, b"from the environment\n");
}

/// The sender offers ::1 beside 127.0.0.1 and listens on both; the receiver (not listening
/// itself) connects to the ::1 hint. IPv4 TCP is refused in the namespace and the transit
/// relay named is a closed port, so the only way the file can arrive is direct over IPv6.
#[test]
fn direct_transit_over_ipv6_loopback() {
    let Some(lab) = Lab::taojie_at("[::1]:0", "[::1]:0", &[]) else {
        return;
    };
    nft(&lab.ns, "add table ip tj");
    nft(
        &lab.ns,
        "add chain ip tj out { type filter hook output priority 0 ; }",
    );
    nft(
        &lab.ns,
        "add rule ip tj out ip protocol tcp reject with tcp reset",
    );
    let dir = lab.dir.path();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&dir.join("six.bin"), 4 << 20);
    let servers = [
        "--relay-url",
        &lab.relay_url,
        "--transit-helper",
        "tcp:[::1]:9",
    ];
    let mut send = vec!["send", "six.bin"];
    send.extend(servers);
    let mut s = lab.spawn(bin(), &send, dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let d = dst.display().to_string();
    let mut recv = vec!["receive", &code, "--no-listen", "--accept", "-o", &d];
    recv.extend(servers);
    let r = lab.spawn(bin(), &recv, dir, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(
        r.stderr.contains("Receiving (direct [::1]:"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(dir.join("six.bin")).unwrap(),
        std::fs::read(dst.join("six.bin")).unwrap()
    );
}

/// The mailbox server restarts while `taojie send` waits for its peer: the sender dials again,
/// claims and opens the same mailbox (the server kept it in its database) and `wormhole
/// receive`, coming afterwards, gets the text.
#[test]
fn the_sender_gets_its_mailbox_back_after_the_server_restarts() {
    let Some(mut lab) = Lab::python() else { return };
    let cwd = lab.dir.path().to_path_buf();
    let code = "5-crossover-clockwork";
    let mut s = lab.taojie_cmd(
        &["send", "--text", "after a restart", "--code", code],
        &cwd,
        b"",
    );
    s.wait_code(Duration::from_secs(30));
    lab.restart_mailbox();
    s.wait_line("reconnected to the mailbox server", Duration::from_secs(90));
    let r = lab.wormhole(&["receive", code], &cwd, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert_eq!(r.stdout, b"after a restart\n");
    assert!(s.stderr.contains("lost the mailbox server"), "{}", s.stderr);
}

/// The same on the receiving side: `taojie receive` has claimed the nameplate and waits when
/// the server restarts; `wormhole send` comes afterwards and the file arrives whole.
#[test]
fn the_receiver_gets_its_mailbox_back_after_the_server_restarts() {
    let Some(mut lab) = Lab::python() else { return };
    let dir = lab.dir.path().to_path_buf();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&dir.join("kept.bin"), 1 << 20);
    let code = "6-crossover-clockwork";
    let d = dst.display().to_string();
    let mut r = lab.taojie_cmd(&["receive", code, "--accept", "-o", &d], &dir, b"");
    r.wait_line("Waiting for the sender", Duration::from_secs(30));
    lab.restart_mailbox();
    r.wait_line("reconnected to the mailbox server", Duration::from_secs(90));
    let s = lab.wormhole(
        &["send", "--hide-progress", "--code", code, "kept.bin"],
        &dir,
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert_eq!(
        std::fs::read(dir.join("kept.bin")).unwrap(),
        std::fs::read(dst.join("kept.bin")).unwrap()
    );
}
