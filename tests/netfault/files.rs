//! `put` and `get` of 16 MiB over a lossy, slow, cut and reset link end byte-identical, and
//! `--retries` resumes after the breaks without the user running anything again.
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Net, Served, wait_size};

const SIZE: usize = 16 << 20;
const LIMIT: Duration = Duration::from_secs(90);
/// Fast enough to finish in a few seconds, slow enough to break a transfer in the middle.
const RATE: &str = "40mbit";

/// A 16 MiB file of random bytes.
fn random_file(path: &Path) {
    let mut data = vec![0u8; SIZE];
    getrandom::fill(&mut data).unwrap();
    std::fs::write(path, data).unwrap();
}

fn hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).unwrap())
}

/// A files server in the server's namespace and a 16 MiB source file beside it.
fn setup(net: &Net) -> Served {
    setup_with(net, &[])
}

/// As [`setup`], with more flags for the server.
fn setup_with(net: &Net, flags: &[&str]) -> Served {
    for d in ["root", "src", "out"] {
        std::fs::create_dir(net.p(d)).unwrap();
    }
    random_file(&net.p("src/big"));
    let root = net.p("root");
    let mut args = vec!["--root", root.to_str().unwrap()];
    args.extend_from_slice(flags);
    net.serve("files", &args)
}

/// Puts `src/big` and gets it back as `out/big`, each checked against the source; returns
/// the two durations.
fn put_and_get(net: &Net, served: &Served) -> (Duration, Duration) {
    let src = net.p("src/big");
    let (src_s, out_s, key) = (
        src.to_str().unwrap().to_string(),
        net.p("out").to_str().unwrap().to_string(),
        net.key(),
    );
    let start = Instant::now();
    let (status, _, err) = net.run(&["put", &served.addr, &src_s, "--key", &key], LIMIT);
    let put = start.elapsed();
    assert!(status.success(), "put failed: {err}");
    assert_eq!(
        hash(&net.p("root/big")),
        hash(&src),
        "put changed the bytes"
    );
    let start = Instant::now();
    let (status, _, err) = net.run(
        &["get", &served.addr, "big", "-o", &out_s, "--key", &key],
        LIMIT,
    );
    let get = start.elapsed();
    assert!(status.success(), "get failed: {err}");
    assert_eq!(hash(&net.p("out/big")), hash(&src), "get changed the bytes");
    (put, get)
}

#[test]
fn sixteen_mib_cross_a_link_losing_two_percent() {
    let Some(net) = Net::new() else { return };
    let served = setup(&net);
    net.link.lose(2);
    let (put, get) = put_and_get(&net, &served);
    let (segs, again) = net.link.tcp_segments();
    eprintln!(
        "2 % loss: put 16 MiB in {put:.2?}, get in {get:.2?}; \
         {again} of {segs} TCP segments retransmitted"
    );
    assert!(again > 0, "no segment was lost: the loss rule did nothing");
    served.assert_no_leaks(Duration::from_secs(20));
}

#[test]
fn sixteen_mib_cross_a_rate_limited_link() {
    let Some(net) = Net::new() else { return };
    let served = setup(&net);
    net.link.limit(RATE);
    let (put, get) = put_and_get(&net, &served);
    eprintln!("tbf {RATE}: put 16 MiB in {put:.2?}, get in {get:.2?}");
    served.assert_no_leaks(Duration::from_secs(20));
}

/// How the connection is broken in the middle of a transfer.
#[derive(Clone, Copy, Debug)]
enum Break {
    /// Every packet answered with a TCP reset for half a second.
    Reset,
    /// The link down for four seconds (the client gives up on a connection after 1.5 s).
    Down,
}

impl Break {
    fn apply(self, net: &Net, served: &Served) {
        match self {
            Break::Reset => {
                net.link.reset(served.port());
                std::thread::sleep(Duration::from_millis(500));
                net.link.stop_resets();
            }
            Break::Down => {
                net.link.set_up(false);
                std::thread::sleep(Duration::from_secs(4));
                net.link.set_up(true);
            }
        }
    }
}

/// Starts a transfer (`put` or `get`) on a rate-limited link, breaks the connection once
/// 9 MiB have arrived, and checks that the client said it retried, resumed from what the
/// receiver had verified (its JSON report), and finished with the right bytes.
fn broken_transfer(how: Break, put: bool) {
    let Some(net) = Net::new() else { return };
    let served = setup(&net);
    net.link.limit(RATE);
    let (src, out, key) = (
        net.p("src/big").to_str().unwrap().to_string(),
        net.p("out").to_str().unwrap().to_string(),
        net.key(),
    );
    let (args, part, done) = if put {
        let args = vec!["put", &served.addr, &src];
        (args, net.p("root/.big.taojie-part"), net.p("root/big"))
    } else {
        std::fs::copy(net.p("src/big"), net.p("root/big")).unwrap();
        let args = vec!["get", &served.addr, "big", "-o", &out];
        (args, net.p("out/.big.taojie-part"), net.p("out/big"))
    };
    let mut args = args;
    args.extend(["--key", &key, "--timeout", "1.5", "--json"]);
    let start = Instant::now();
    let client = net.spawn(&args);
    // Past two 4 MiB segments, so that the receiver has verified something to resume from.
    wait_size(&part, 9 << 20, Duration::from_secs(30));
    how.apply(&net, &served);
    let (status, out, err) = client.finish(LIMIT);
    let took = start.elapsed();
    eprintln!("{how:?} during {}: {took:.2?}; stderr:\n{err}", args[0]);
    assert!(status.success(), "{how:?}: {} failed: {err}", args[0]);
    assert!(
        err.contains("retry 1/5 in"),
        "{how:?}: no retry said: {err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out).expect("one JSON report");
    let resumed = report["files"][0]["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= 4 << 20,
        "{how:?}: resumed from {resumed}, not where it broke"
    );
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    let retry_lines: Vec<&str> = err.lines().filter(|l| l.contains("; retry ")).collect();
    assert!(
        retry_lines
            .iter()
            .all(|l| l.starts_with(&format!("taojie: connection to {}", served.addr))),
        "retry lines should say which connection broke: {retry_lines:?}"
    );
    assert_eq!(
        hash(&done),
        hash(&net.p("src/big")),
        "{how:?}: bytes differ"
    );
    served.assert_no_leaks(Duration::from_secs(30));
}

#[test]
fn put_resumes_after_a_reset() {
    broken_transfer(Break::Reset, true);
}

#[test]
fn get_resumes_after_a_reset() {
    broken_transfer(Break::Reset, false);
}

#[test]
fn put_resumes_after_the_link_is_down() {
    broken_transfer(Break::Down, true);
}

#[test]
fn get_resumes_after_the_link_is_down() {
    broken_transfer(Break::Down, false);
}

/// Without retries the user gets one line saying what broke and where, and a non-zero exit.
#[test]
fn without_retries_a_reset_is_said_once() {
    let Some(net) = Net::new() else { return };
    // The reset may reach only the client (the server gets one only if it sends while the rule
    // is there): then the server learns of it by its idle timeout (or, at the default 300 s,
    // by keepalive after about 90 s). A short one keeps this test's wait short.
    let served = setup_with(&net, &["--idle-timeout", "5"]);
    net.link.limit(RATE);
    let (src, key) = (net.p("src/big").to_str().unwrap().to_string(), net.key());
    let client = net.spawn(&["put", &served.addr, &src, "--key", &key, "--retries", "0"]);
    wait_size(
        &net.p("root/.big.taojie-part"),
        3 << 20,
        Duration::from_secs(30),
    );
    Break::Reset.apply(&net, &served);
    let (status, _, err) = client.finish(LIMIT);
    assert!(!status.success(), "put should fail without retries");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    let want = format!("taojie: error: connection to {} ", served.addr);
    assert!(
        lines[0].starts_with(&want) && lines[0].contains("during big at "),
        "{err}"
    );
    served.assert_no_leaks(Duration::from_secs(30));
}
