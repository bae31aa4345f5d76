//! The command line around the answers: errors, exact big numbers, batches, pipes, help.
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use super::{taojie, text};

#[test]
fn host_counts_past_2_64_are_exact_json_numbers() {
    for (net, hosts) in [
        ("::/0", "340282366920938463463374607431768211455"),
        ("2001:db8::/63", "36893488147419103231"),
        ("2001:db8::/64", "18446744073709551615"),
        ("0.0.0.0/0", "4294967294"),
    ] {
        let out = text(&taojie(&[net, "--json"], "").stdout);
        assert!(out.contains(&format!(r#""hosts":{hosts},"#)), "{out}");
        assert!(out.contains(r#""broadcast":"#), "{out}");
    }
}

#[test]
fn bad_input_is_one_error_line_and_a_failure_status() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["256.1.1.1"],
            "256.1.1.1 is not an IPv4 address: 256 is out of range (0-255)",
        ),
        (
            &["1.2.3"],
            "1.2.3 is not an IPv4 address: it has 3 parts; an address has 4 (a.b.c.d)",
        ),
        (&["01.2.3.4"], "leading zero"),
        (
            &["1.2.3.4/33"],
            "prefix /33 is out of range for IPv4 (0-32)",
        ),
        (&["::/129"], "prefix /129 is out of range for IPv6 (0-128)"),
        (
            &["1.2.3.4", "--mask", "255.0.255.0"],
            "255.0.255.0 is not a netmask: its one-bits are not contiguous",
        ),
        (
            &["1.2.3.4/0.0.0.255"],
            "0.0.0.255 is a wildcard mask, not a netmask; the netmask is 255.255.255.0 (/24)",
        ),
        (
            &["1.2.3.4", "--mask", "ffff::"],
            "netmask ffff:: is IPv6 but the address is IPv4",
        ),
        (
            &["1.2.3.4/8", "--mask", "16"],
            "the masks given disagree (/8, /16)",
        ),
        (
            &["1.2.3.4", "5.6.7.8"],
            "two addresses are compared under one netmask",
        ),
        (&["1.2.3.4/24", "::1"], "1.2.3.4 is IPv4 but ::1 is IPv6"),
        (
            &["example.com"],
            "example.com is not an IP address (ipcalc does not look up names)",
        ),
        (&["fe80::1%"], "a zone (%) belongs after the address"),
        (
            &["1::2::3"],
            "'::' may stand for one run of zero groups only",
        ),
        (
            &["10.0.0.0/8", "--split", "4"],
            "cannot split 10.0.0.0/8 into /4",
        ),
        (
            &["10.0.0.0/8", "--split", "33"],
            "prefix /33 is out of range",
        ),
        (
            &["0.0.0.0/0", "--split", "32"],
            "0.0.0.0/0 has 4294967296 subnets of /32, more than --limit 65536; choose a shorter prefix or raise --limit",
        ),
        (
            &["::/0", "--split", "128", "--limit", "18446744073709551615"],
            "::/0 has 2^128 subnets of /128",
        ),
        (
            &["10.0.0.0/8", "--split", "24", "--limit", "65535"],
            "more than --limit 65535",
        ),
        (&[], "no address given"),
        (
            &["-", "1.2.3.4"],
            "`-` reads every case from standard input",
        ),
        (&["1.2.3.4\u{1b}[31m"], r#""1.2.3.4\u{1b}[31m""#),
    ];
    for (args, want) in cases {
        let out = taojie(args, "");
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with("taojie: error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panic"), "{args:?}: {err}");
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let mut child = crate::common::command(env!("CARGO_BIN_EXE_taojie"))
        .args([
            "ipcalc",
            "0.0.0.0/0",
            "--split",
            "24",
            "--limit",
            "16777216",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::common::kill_after(&child, Duration::from_secs(60), "taojie ipcalc");
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 64];
    stdout.read_exact(&mut start).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn a_batch_for_people_reports_bad_lines_by_number() {
    let out = taojie(
        &["-"],
        "10.0.0.1/8\n\n# a comment\n10.0.0.300\n10.0.0.1 10.0.0.2/8\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "taojie: error: line 4: 10.0.0.300 is not an IPv4 address: 300 is out of range (0-255)\n"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Address:    10.0.0.1 "), "{stdout}");
    assert!(
        stdout.contains("\n\nSame subnet: yes, 10.0.0.0/8\n"),
        "{stdout}"
    );
}

#[test]
fn help_has_examples() {
    let (_, stdout, _) =
        crate::common::run_with_input(&["ipcalc", "--help"], b"", Duration::from_secs(60));
    let help = text(&stdout);
    assert!(
        help.contains("--split <NEWPREFIX>") && help.contains("Examples:"),
        "{help}"
    );
    assert!(help.contains("Subnet-Router anycast"), "{help}");
}
