//! Error lines say once what broke and where: a connection reset in the handshake names the
//! address and the reset once (it used to say it twice), a server too busy for one more
//! handshake is told apart from a broken one, and a name missing on a files server is said
//! to be missing there, not as if it were a local file.
use std::net::TcpListener;
use std::time::Duration;

use super::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A TCP server that resets every connection after a moment; its address.
fn resetting_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        // Bounded: the test makes a handful of connections.
        for conn in l.incoming().take(16) {
            let Ok(conn) = conn else { continue };
            thread::sleep(Duration::from_millis(100));
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
        }
    });
    addr
}

#[test]
fn a_reset_in_the_handshake_is_said_once_with_the_address() {
    let _alone = one_at_a_time();
    let keys = Keys::new();
    let key = keys.key();
    let addr = resetting_server().to_string();
    let k = ["--key", key.as_str()];
    let commands: [Vec<&str>; 5] = [
        vec!["exec", &addr, k[0], k[1], "--", "true"],
        vec!["get", &addr, "payload.bin", k[0], k[1]],
        vec!["put", &addr, &key, k[0], k[1]],
        vec!["ls", &addr, k[0], k[1]],
        vec!["connect", &addr, k[0], k[1]],
    ];
    for args in commands {
        let (status, _, err) = common::run_with_input(&args, b"", LIMIT);
        let line = err
            .lines()
            .find(|l| l.starts_with("taojie: error"))
            .unwrap_or_else(|| panic!("{args:?}: no error line in {err:?}"));
        assert!(!status.success(), "{args:?}");
        assert_eq!(line.matches("reset").count(), 1, "{args:?}: {line}");
        assert!(line.contains(&addr) && line.contains("handshake"), "{line}");
    }
}

#[test]
fn a_server_too_busy_for_one_more_handshake_says_so_not_a_broken_pipe() {
    let _alone = one_at_a_time();
    let keys = Keys::new();
    let key = keys.key();
    let server = Spawned::start(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--max-handshakes-per-addr",
            "1",
            "--handshake-timeout",
            "60",
        ],
        1,
    );
    let addr = server.addr("exec");
    // Its banner came: the server counts it among the handshakes in flight.
    let mut half_open = connect_from(Ipv4Addr::LOCALHOST, addr);
    half_open
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Read::read_exact(&mut half_open, &mut [0u8; 32]).unwrap();
    let (status, _, err) = common::run_with_input(
        &["exec", &addr.to_string(), "--key", &key, "--", "true"],
        b"",
        LIMIT,
    );
    assert!(!status.success());
    assert!(
        err.contains("closed the connection without a word")
            && err.contains("too busy for one more handshake"),
        "{err}"
    );
}

#[test]
fn a_name_missing_on_the_server_is_said_to_be_missing_there() {
    let _alone = one_at_a_time();
    let keys = Keys::new();
    let key = keys.key();
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Spawned::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--root",
            root.path().to_str().unwrap(),
        ],
        1,
    );
    let addr = server.addr("files").to_string();
    let out = out.path().to_str().unwrap();
    for args in [
        vec!["get", &addr, "payload.bin", "--key", &key, "-o", out],
        vec!["ls", &addr, "nothere", "--key", &key],
    ] {
        let (status, _, err) = common::run_with_input(&args, b"", LIMIT);
        assert!(!status.success(), "{args:?}");
        let name = args[2];
        let line = format!("{name}: no such file or directory on the server");
        assert!(err.contains(&line), "{args:?}: {err}");
        assert!(!err.contains("os error"), "{args:?}: {err}");
    }
}
