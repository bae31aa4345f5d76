//! The client side of `taojie send` / `taojie receive` beyond the protocol itself: the servers
//! taken from the environment (clients read no config file), direct transit over IPv6, and a
//! mailbox connection that drops mid-exchange and is picked up again.
use std::time::Duration;

use crate::LIMIT;
use crate::common::bin;
use crate::lab::{Lab, both_ok};

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
