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

/// SIGHUP's other limits: `idle-timeout` for connections accepted from then on (the one open
/// before keeps the old one), `grace` at the next shutdown, and `max-handshakes-per-addr`
/// for handshakes started from then on.
#[test]
fn sighup_applies_idle_timeout_grace_and_the_handshake_caps() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let text = format!(
        "[echo]\nlisten = \"127.0.0.1:0\"\nidle-timeout = 3600\ngrace = 600\n\
         [exec]\nlisten = \"127.0.0.1:0\"\nkey = \"{}\"\nmax-handshakes-per-addr = 8\n",
        key.display()
    );
    let config = write(dir.path(), "taojie.toml", &text);
    let mut server = serve(&["serve", "--config", config.to_str().unwrap()], 2);
    let (echo_addr, exec_addr) = (server.addr("echo", "tcp"), server.addr("exec", "tcp"));
    let mut before = connect(&echo_addr);
    assert_eq!(echo(&mut before, "before"), "before");

    write(
        dir.path(),
        "taojie.toml",
        &text
            .replace("idle-timeout = 3600", "idle-timeout = 1")
            .replace("grace = 600", "grace = 1")
            .replace("max-handshakes-per-addr = 8", "max-handshakes-per-addr = 1"),
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("re-read");
    for applied in [
        "[echo] grace = 1",
        "[echo] idle-timeout = 1",
        "[exec] max-handshakes-per-addr = 1",
    ] {
        assert!(line.contains(applied), "{applied} not applied: {line}");
    }

    // A connection accepted now is closed after a second of silence (not before).
    let mut after = connect(&echo_addr);
    after
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let t = Instant::now();
    assert!(
        closed_within(&mut after),
        "idle for a minute under idle-timeout = 1"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "closed after {:?}",
        t.elapsed()
    );
    // The one from before keeps its hour.
    assert_eq!(echo(&mut before, "still here"), "still here");

    // One handshake per address now: a second one from 127.0.0.1 is refused at once.
    let banner = |s: &mut std::net::TcpStream| {
        let mut b = [0u8; 32];
        std::io::Read::read_exact(s, &mut b).is_ok()
    };
    let mut first = connect(&exec_addr);
    assert!(banner(&mut first), "the first handshake got no banner");
    let mut second = connect(&exec_addr);
    assert!(!banner(&mut second), "a second handshake from one address");

    // Shutdown with `before` open: the new grace of a second ends it, not the old 600 s.
    server.signal(libc::SIGTERM);
    server.wait_stderr("grace period over; closing open connections");
    let status = super::common::wait_timeout(&mut server.child, Duration::from_secs(60))
        .expect("still running: the old grace of 600 s");
    assert!(status.success(), "{status:?}");
}

/// `RUST_LOG`, when set, wins over `log-level`, at start and after SIGHUP.
#[test]
fn rust_log_wins_over_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let text = "log-level = \"warn\"\n[echo]\nlisten = \"127.0.0.1:0\"\nmax-conns = 1\n";
    let config = write(dir.path(), "taojie.toml", text);
    let mut cmd = crate::common::command(super::common::bin());
    cmd.args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "debug");
    let mut server = super::Served::spawn_capturing(cmd, 1);
    let addr = server.addr("echo", "tcp");
    let mut open = connect(&addr);
    assert_eq!(echo(&mut open, "one"), "one");
    // A refusal is logged at debug: RUST_LOG's level, not the file's warn.
    assert!(closed_unanswered(&mut connect(&addr)));
    server.wait_stderr("connection limit reached");
    write(
        dir.path(),
        "taojie.toml",
        &text.replace("\"warn\"", "\"error\""),
    );
    server.signal(libc::SIGHUP);
    server.wait_stderr("re-read");
    assert!(closed_unanswered(&mut connect(&addr)));
    server.wait_stderr("connection limit reached");
}
