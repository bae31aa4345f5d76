//! SIGHUP with `--config`: limits and the log level change for new connections while an open
//! one goes on; an address change is reported as needing a restart; a broken file is
//! reported and the old settings stay.
use super::{closed_unanswered, connect, echo, serve, write};

#[test]
fn sighup_applies_max_conns_and_log_level_with_a_connection_open() {
    // Both log formats: each installs its own filter that the reload swaps.
    for format in ["human", "json"] {
        max_conns_and_log_level(format);
    }
}

fn max_conns_and_log_level(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let text = "log-level = \"info\"\n[echo]\nlisten = \"127.0.0.1:0\"\nmax-conns = 1\n";
    let config = write(dir.path(), "taojie.toml", text);
    let args = [
        "--log-format",
        format,
        "serve",
        "--config",
        config.to_str().unwrap(),
    ];
    let mut server = serve(&args, 1);
    let addr = server.addr("echo", "tcp");

    let mut open = connect(&addr);
    assert_eq!(echo(&mut open, "first"), "first");
    let mut refused = connect(&addr);
    assert!(
        closed_unanswered(&mut refused),
        "max-conns = 1 lets a second in"
    );

    write(
        dir.path(),
        "taojie.toml",
        &text
            .replace("max-conns = 1", "max-conns = 2")
            .replace("\"info\"", "\"debug\""),
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("re-read");
    assert!(
        line.contains("applied log-level = debug, [echo] max-conns = 2"),
        "{line}"
    );
    // At info the refusal before the reload was not logged.
    assert!(
        !server
            .stderr
            .iter()
            .any(|l| l.contains("connection limit reached")),
        "{:?}",
        server.stderr
    );

    // The open connection survived; a second one now fits, a third does not.
    assert_eq!(echo(&mut open, "still here"), "still here");
    let mut second = connect(&addr);
    assert_eq!(echo(&mut second, "second"), "second");
    let mut third = connect(&addr);
    assert!(
        closed_unanswered(&mut third),
        "max-conns = 2 lets a third in"
    );
    // And at debug the refusal is logged.
    server.wait_stderr("connection limit reached");
}

#[test]
fn sighup_reports_an_address_change_as_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[echo]\nlisten = \"127.0.0.1:0\"\n";
    let config = write(dir.path(), "taojie.toml", text);
    let mut server = serve(&["serve", "--config", config.to_str().unwrap()], 1);
    let addr = server.addr("echo", "tcp");
    let mut open = connect(&addr);

    write(
        dir.path(),
        "taojie.toml",
        "[echo]\nlisten = \"127.0.0.1:1\"\n[time]\n",
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("not applied");
    assert!(
        line.contains("not applied: [echo] listen, [time] added (restart to change)"),
        "{line}"
    );
    assert_eq!(echo(&mut open, "same"), "same");
    assert_eq!(echo(&mut connect(&addr), "old address"), "old address");

    // A file that no longer reads: reported with its line, the server goes on.
    write(dir.path(), "taojie.toml", "[echo]\nlisten = 5\nbogus = 1\n");
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("kept the configuration in force");
    assert!(line.contains("line 3: unknown key `bogus`"), "{line}");
    assert_eq!(echo(&mut connect(&addr), "on"), "on");
}

/// Whether the server closes `s` (which sends nothing) within its read timeout; bytes the
/// server sends first are skipped.
fn closed_within(s: &mut std::net::TcpStream) -> bool {
    use std::io::{ErrorKind, Read};
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn sighup_applies_the_handshake_timeout_to_new_handshakes() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let text = format!(
        "[exec]\nlisten = \"127.0.0.1:0\"\nkey = \"{}\"\nhandshake-timeout = 3600\n",
        key.display()
    );
    let config = write(dir.path(), "taojie.toml", &text);
    let mut server = serve(&["serve", "--config", config.to_str().unwrap()], 1);
    let addr = server.addr("exec", "tcp");

    let mut before = connect(&addr);
    before
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    assert!(
        !closed_within(&mut before),
        "a silent client was cut before the hour's handshake timeout"
    );

    write(
        dir.path(),
        "taojie.toml",
        &text.replace("handshake-timeout = 3600", "handshake-timeout = 0.2"),
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("re-read");
    assert!(
        line.contains("applied [exec] handshake-timeout = 0.2"),
        "{line}"
    );
    // Cut: by the new 0.2 s timeout, since the old one was an hour (the minute this waits
    // only ends a hang, and is no measure of how soon).
    let mut after = connect(&addr);
    after
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert!(
        closed_within(&mut after),
        "a silent client outlived the new 0.2 s handshake timeout by a minute"
    );
    // The connection from before the reload keeps the hour it started with.
    before
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        !closed_within(&mut before),
        "a handshake started before the reload was cut by the new timeout"
    );
}
