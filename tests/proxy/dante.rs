//! `taojie connect --proxy` through dante (Debian's dante-server, `danted`) as a real SOCKS5
//! peer: on a free loopback port with its own config file in a temporary directory, ended by
//! its PID. No login: dante's username method checks the system's password database, and a
//! test does not add users to the machine (microsocks covers RFC 1929 in peers.rs).
use std::time::Duration;

use crate::common::{need, run_with_input};
use crate::nginx::free_port;
use crate::peers::{echo_server, echo_through, start_peer};

const DANTED: &str = "/usr/sbin/danted";

#[test]
fn taojie_connect_through_dante_and_its_refusal() {
    if !need::tool(DANTED) {
        return;
    }
    let (_echo, target) = echo_server();
    let port = target.rsplit_once(':').unwrap().1;
    // A port dante's rules block: the refusal a client sees.
    let blocked = free_port();
    let dir = tempfile::tempdir().unwrap();
    let p = free_port();
    // As root, dante wants to know whom to drop to; as anyone else it stays who it is.
    let users = if nix_root() {
        "user.privileged: root\nuser.unprivileged: nobody\n"
    } else {
        ""
    };
    let conf = dir.path().join("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: {log}\ninternal: 127.0.0.1 port = {p}\nexternal: 127.0.0.1\n\
             socksmethod: none\nclientmethod: none\n{users}\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks block {{ from: 127.0.0.0/8 to: 127.0.0.1/32 port = {blocked} }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }}\n",
            log = dir.path().join("danted.log").display(),
        ),
    )
    .unwrap();
    let pid = dir.path().join("danted.pid");
    let _dante = start_peer(
        DANTED,
        &[
            "-f",
            conf.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-N",
            "1",
        ],
        p,
    );
    // An address for dante to connect to, and a name for it to resolve.
    echo_through(&format!("socks5://127.0.0.1:{p}"), &target);
    echo_through(
        &format!("socks5h://127.0.0.1:{p}"),
        &format!("localhost:{port}"),
    );
    let (status, _, err) = run_with_input(
        &[
            "connect",
            "--proxy",
            &format!("socks5://127.0.0.1:{p}"),
            &format!("127.0.0.1:{blocked}"),
        ],
        b"",
        Duration::from_secs(20),
    );
    assert!(!status.success());
    assert!(err.contains("not allowed by ruleset"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Whether this process runs as root.
fn nix_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    unsafe {
        libc::geteuid() == 0
    }
}
