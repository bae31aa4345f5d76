//! Every flag, positional and configuration key that takes an address goes through one
//! parser and says what is wrong in one sentence: a port above 65535, `[::1]` without a port
//! and a bare `::1` (issue 24, item 13). Configuration files are in tests/config/errors.rs.
#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Server, run_with_input};

const LIMIT: Duration = Duration::from_secs(20);
const EXPECTED: &str = "expected HOST:PORT (e.g. 127.0.0.1:9007 or [::1]:9007); ";

/// Each mistake and the end of its sentence.
const MISTAKES: [(&str, &str); 4] = [
    ("127.0.0.1:99999", "99999 is not a port (1-65535)"),
    ("[::1]", "[::1] has no port"),
    (
        "::1",
        "::1 reads as an IPv6 address without a port: write it in brackets, then the port, \
         as [::1]:PORT",
    ),
    ("localhost", "localhost has no port"),
];

/// Every command line with an address in it; `@` stands for the address.
const COMMANDS: &[&str] = &[
    "serve echo --listen @",
    "serve echo --udp @",
    "serve time --listen @",
    "serve time --tcp @",
    "serve time --sntp @",
    "serve exec --listen @",
    "serve exec --classic @",
    "serve files --listen @",
    "serve files --classic @",
    "serve chat --listen @",
    "serve chat --udp @",
    "serve chat --web @",
    "serve relay --listen @",
    "serve proxy --listen @",
    "serve --metrics @ echo",
    "exec @ -- true",
    "put @ /etc/hostname",
    "get @ f",
    "ls @",
    "chat @ --name a",
    "chat 127.0.0.1:9006,@ --name a",
    "bench @",
    "time @",
    "connect @",
    "listen @",
    "forward @ 127.0.0.1:9",
    "forward 127.0.0.1:0 @",
    "forward udp:@ udp:127.0.0.1:9",
];

#[test]
fn every_address_flag_and_positional_says_the_same_about_the_same_mistake() {
    for command in COMMANDS {
        for (input, why) in MISTAKES {
            if command.starts_with("serve --metrics") && input == "localhost" {
                continue; // (a PORT alone is --metrics' other form; "localhost" is not it)
            }
            let line = command.replace('@', input);
            let args: Vec<&str> = line.split(' ').collect();
            let (status, out, err) = run_with_input(&args, b"", LIMIT);
            assert!(!status.success(), "taojie {line}: exit status 0");
            assert!(out.is_empty(), "taojie {line}: stdout {out:?}");
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.ends_with(&format!("{EXPECTED}{why}")),
                "taojie {line}: {err}"
            );
            // One error, named by where it came from: the flag (clap) or the address (the
            // netcat commands, whose positional is a socket path with --unix).
            let given = command.split(' ').find(|w| w.contains('@')).unwrap();
            let given = given.replace('@', input);
            let named = first.starts_with(&format!("error: invalid value '{given}' for '"))
                || first == format!("taojie: error: bad address \"{input}\": {EXPECTED}{why}");
            assert!(named, "taojie {line}: {err}");
        }
    }
}

#[test]
fn the_wormhole_helper_takes_its_host_and_port_through_the_same_parser() {
    let (status, _, err) = run_with_input(
        &[
            "send",
            "--transit-helper",
            "tcp:127.0.0.1:99999",
            "--text",
            "x",
        ],
        b"",
        LIMIT,
    );
    assert!(!status.success());
    assert!(
        err.lines()
            .next()
            .unwrap_or_default()
            .ends_with(&format!("{EXPECTED}99999 is not a port (1-65535)")),
        "{err}"
    );
}

#[test]
fn names_and_bracketed_v6_addresses_work_where_literals_do() {
    // A name that resolves, and [::1] with a port, serve and connect.
    let srv = Server::start(&["serve", "echo", "--listen", "localhost:0"], 1);
    let addr = srv.addr("echo", "tcp");
    let port = addr.rsplit(':').next().unwrap();
    let (status, out, err) = run_with_input(
        &["connect", &format!("localhost:{port}")],
        b"hello\n",
        LIMIT,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "hello\n");
    let v6 = Server::start(&["serve", "echo", "--listen", "[::1]:0"], 1);
    let addr = v6.addr("echo", "tcp");
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let (status, out, err) = run_with_input(&["connect", &addr], b"hi\n", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "hi\n");
}

#[test]
fn a_name_that_does_not_resolve_is_one_line_naming_it() {
    let (status, _, err) = run_with_input(&["connect", "nosuch.invalid:7"], b"", LIMIT);
    assert!(!status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("taojie: error: nosuch.invalid:7: cannot resolve nosuch.invalid ("),
        "{err}"
    );
}
