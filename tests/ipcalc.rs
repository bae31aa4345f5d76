//! `taojie ipcalc` through the real binary: its `--json` agrees with Python's `ipaddress`
//! (tests/peers/ipcalc_oracle.py) on thousands of generated cases and on the edges; people get
//! aligned columns and the seeds' AND, bit by bit; bad input is one error line, never a panic.
//!
//! Thousands of cases go through one process each side: `taojie ipcalc - --json` reads one case
//! per line, as the oracle does, and both print one JSON object per result per line. A sample
//! is also run one case per process to show that the batch answers as the command line does.
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde::Deserialize;

#[path = "ipcalc/cases.rs"]
mod cases;
#[path = "ipcalc/cli.rs"]
mod cli;
mod common;
#[path = "ipcalc/human.rs"]
mod human;

fn taojie(args: &[&str], stdin: &str) -> Output {
    run(
        crate::common::command(env!("CARGO_BIN_EXE_taojie"))
            .arg("ipcalc")
            .args(args),
        stdin,
    )
}

fn oracle(stdin: &str) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/ipcalc_oracle.py");
    let out = run(Command::new("python3").arg(script), stdin);
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    common::kill_after(&child, Duration::from_secs(120), "ipcalc or its oracle");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap().expect("write stdin");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// One line of `--json`; `hosts` as u128 so numbers past 2^64 compare exactly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    address: Option<String>,
    prefix: Option<u8>,
    netmask: Option<String>,
    wildcard: Option<String>,
    network: Option<String>,
    broadcast: Option<String>,
    first: Option<String>,
    last: Option<String>,
    hosts: Option<u128>,
    kind: Option<String>,
    class: Option<String>,
    version: Option<u8>,
    same_subnet: Option<bool>,
    other: Option<String>,
    other_network: Option<String>,
    input: Option<String>,
    /// Compared as "there is an error", not by wording (Python's and ours differ).
    error: Option<String>,
}

const CONTRACT_KEYS: [&str; 10] = [
    "address",
    "prefix",
    "netmask",
    "wildcard",
    "network",
    "broadcast",
    "first",
    "last",
    "hosts",
    "kind",
];

fn answers(stdout: &[u8]) -> Vec<(String, Answer)> {
    text(stdout)
        .lines()
        .map(|line| {
            let mut a: Answer =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if a.error.is_some() {
                a.error = Some(String::new());
            } else {
                let keys: serde_json::Value = serde_json::from_str(line).unwrap();
                for key in CONTRACT_KEYS {
                    assert!(keys.get(key).is_some(), "no {key}: {line}");
                }
            }
            (line.to_string(), a)
        })
        .collect()
}

/// Runs every case through `taojie ipcalc - --json` and the oracle; returns taojie's answers.
fn agree(cases: &[String]) -> Vec<Answer> {
    let input = cases.join("\n") + "\n";
    let ours = taojie(&["-", "--json"], &input);
    assert!(ours.stderr.is_empty(), "{}", text(&ours.stderr));
    let theirs = answers(&oracle(&input).stdout);
    let ours_parsed = answers(&ours.stdout);
    for (i, ((line, a), (want, b))) in ours_parsed.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "result {i}\n taojie: {line}\n python: {want}");
    }
    assert_eq!(
        ours_parsed.len(),
        theirs.len(),
        "as many results as the oracle"
    );
    let any_error = ours_parsed.iter().any(|(_, a)| a.error.is_some());
    assert_eq!(
        ours.status.success(),
        !any_error,
        "the exit status says whether every case was answered"
    );
    ours_parsed.into_iter().map(|(_, a)| a).collect()
}

#[test]
fn agrees_with_python_on_thousands_of_generated_cases() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (cases, counts) = cases::generate(0x7a0_11e);
    assert!(counts.v4 >= 33 * 40 && counts.v6 >= 129 * 20, "{counts:?}");
    let answers = agree(&cases);
    let of = |f: &dyn Fn(&Answer) -> bool| answers.iter().filter(|a| f(a)).count();
    // Every prefix length of both families was answered, and every kind of case happened.
    for p in 0..=128u8 {
        assert!(
            of(&|a| a.version == Some(6) && a.prefix == Some(p)) > 0,
            "IPv6 /{p}"
        );
        if p <= 32 {
            assert!(
                of(&|a| a.version == Some(4) && a.prefix == Some(p)) > 0,
                "IPv4 /{p}"
            );
        }
    }
    assert!(of(&|a| a.same_subnet == Some(true)) > 300);
    assert!(of(&|a| a.same_subnet == Some(false)) > 300);
    assert!(of(&|a| a.error.is_some()) >= counts.invalid);
    assert!(of(&|a| a.hosts.is_some_and(|h| h > u128::from(u64::MAX))) > 500);
    for kind in [
        "private",
        "loopback",
        "link-local",
        "multicast",
        "documentation",
        "cgnat",
        "global",
        "reserved",
    ] {
        assert!(of(&|a| a.kind.as_deref() == Some(kind)) > 0, "{kind}");
    }
    eprintln!("{counts:?}: {} results agreed with Python", answers.len());
}

/// The places other tools get wrong.
const EDGES: &[&str] = &[
    "0.0.0.0/0",
    "255.255.255.255/0",
    "10.20.30.40/0",
    "10.0.0.0/30",
    "10.0.0.0/31",
    "10.0.0.1/31",
    "255.255.255.254/31",
    "10.0.0.1/32",
    "0.0.0.0/32",
    "255.255.255.255/32",
    "255.255.255.255",
    "192.168.1.77/24",
    "192.168.1.77/255.255.255.0",
    "100.64.1.1/10",
    "169.254.0.1/16",
    "224.0.0.251/4",
    "240.0.0.1/4",
    "192.0.2.10/24",
    "::/0",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0",
    "2001:db8::1/64",
    "2001:db8::/126",
    "2001:db8::/127",
    "2001:db8::1/127",
    "2001:db8::1/128",
    "::/128",
    "::1",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
    "::ffff:192.0.2.1/96",
    "::ffff:192.0.2.1/128",
    "::1.2.3.4/128",
    "fe80::1/10",
    "fe80::1%eth0/64",
    "fd00::1/8",
    "ff02::1/16",
    "3fff::1/20",
    "2002::1/16",
    "10.0.0.1/31 10.0.0.0",
    "10.0.0.1 10.0.0.2 --mask 255.255.255.255",
    "1.2.3.4 200.5.6.7 --mask 0",
    "::/127 ::1",
    "::1 ::2/127",
    "2001:db8::1/64 2001:db9::1",
    "0.0.0.0/0 --split 1",
    "255.255.255.254/31 --split 32",
    "::/0 --split 2",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126 --split 128",
    "10.1.2.3/8 --split 8",
    "256.0.0.1",
    "1.2.3.4/33",
    "::/129",
    "1.2.3.4 --mask 255.0.255.0",
    "1.2.3.4/255.255.0.255",
    "0.0.0.0/0 --split 32",
    "::/0 --split 128",
];

#[test]
fn agrees_with_python_on_the_edges() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let cases: Vec<String> = EDGES.iter().map(|s| s.to_string()).collect();
    agree(&cases);
}

#[test]
fn one_case_per_process_answers_as_the_batch_does() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let sample = [
        "192.168.1.77/24",
        "10.0.0.1/31",
        "2001:db8::1/64",
        "::/0",
        "172.16.10.1 172.16.10.2 --mask 255.255.255.0",
        "10.0.0.0/8 --split 10",
        "--split 10.0.0.0/8 10",
    ];
    let batch = taojie(&["-", "--json"], &(sample.join("\n") + "\n"));
    let mut alone = String::new();
    for case in sample {
        let args: Vec<&str> = case.split_whitespace().chain(["--json"]).collect();
        let out = taojie(&args, "");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{case}: {}",
            text(&out.stderr)
        );
        alone += &text(&out.stdout);
    }
    assert_eq!(text(&batch.stdout), alone);
}
