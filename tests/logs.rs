//! `--log-format json`: every line on standard error is one JSON object, and the lines a
//! connection logs carry its service, peer and connection id.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{bin, run_with_input};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

/// A server started with its standard error read line by line, each line parsed as JSON.
struct Logged {
    child: Child,
    addrs: Vec<String>,
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
}

impl Logged {
    /// Starts `taojie ARGS` with `RUST_LOG=level`; waits for `n` announce lines.
    fn start(args: &[&str], level: &str, n: usize) -> Logged {
        let mut child = crate::common::command(bin())
            .args(args)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start taojie");
        let lines = reader(child.stderr.take().unwrap());
        let out = reader(child.stdout.take().unwrap());
        let addrs = (0..n)
            .map(|_| {
                let line = out.recv_timeout(LIMIT).expect("announce line");
                line.rsplit(' ').next().unwrap().to_string()
            })
            .collect();
        Logged {
            child,
            addrs,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the event whose message is `message`; every line before it must be a JSON
    /// object too.
    fn event(&mut self, message: &str) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(v) = self.seen.iter().find(|v| v["message"] == message) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} event; got {:?}", self.seen));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {line:?}"));
            assert!(v.is_object(), "not one object: {line}");
            self.seen.push(v);
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reader<R: Read + Send + 'static>(stream: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The fields every line has: an RFC 3339 timestamp, a level, a message.
fn assert_event(v: &Value, level: &str) {
    let ts = v["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp: {v}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "timestamp {ts:?} is not RFC 3339"
    );
    assert_eq!(v["level"], level, "{v}");
    assert!(v["message"].is_string(), "{v}");
}

#[test]
fn an_exec_command_s_lines_name_the_service_the_peer_and_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let key = key.to_str().unwrap();
    let (status, _, err) = run_with_input(&["keygen", key], b"", LIMIT);
    assert!(status.success(), "keygen: {err}");
    let mut server = Logged::start(
        &[
            "--log-format",
            "json",
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            key,
        ],
        "info",
        1,
    );
    let addr = server.addrs[0].clone();

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, out, err) = run_with_input(
            &["exec", &addr, "--key", key, "--", "echo", "hi"],
            b"",
            LIMIT,
        );
        assert!(status.success(), "exec: {err}");
        assert_eq!(out, b"hi\n");
        let running = server.event("running");
        assert_event(&running, "INFO");
        assert_eq!(running["program"], "echo", "{running}");
        let span = &running["span"];
        assert_eq!(span["service"], "exec", "{running}");
        let peer = span["peer"]
            .as_str()
            .unwrap_or_else(|| panic!("no peer: {running}"));
        assert!(peer.starts_with("127.0.0.1:"), "{running}");
        let conn = span["conn"]
            .as_u64()
            .unwrap_or_else(|| panic!("no conn id: {running}"));
        // The end of the same command carries the same connection.
        let ended = server.event("command ended");
        assert_eq!(ended["span"]["conn"], conn, "{ended}");
        assert_eq!(ended["code"], 0, "{ended}");
        ids.push(conn);
        server.seen.clear();
    }
    assert_ne!(ids[0], ids[1], "two connections share an id");
}

#[test]
fn a_refused_handshake_names_its_peer_even_when_only_warnings_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = ["server.key", "other.key"]
        .iter()
        .map(|name| {
            let path = dir.path().join(name).to_str().unwrap().to_string();
            let (status, _, err) = run_with_input(&["keygen", &path], b"", LIMIT);
            assert!(status.success(), "keygen: {err}");
            path
        })
        .collect();
    let mut server = Logged::start(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &keys[0],
            "--log-format=json",
        ],
        "warn",
        1,
    );
    let addr = server.addrs[0].clone();
    let (status, _, _) = run_with_input(
        &["exec", &addr, "--key", &keys[1], "--", "true"],
        b"",
        LIMIT,
    );
    assert!(!status.success(), "a wrong key ran a command");
    let refused = server.event("handshake refused");
    assert_event(&refused, "WARN");
    assert!(refused["error"].is_string(), "{refused}");
    assert_eq!(refused["span"]["service"], "exec", "{refused}");
    let peer = refused["span"]["peer"].as_str().unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "{refused}");
}

#[test]
fn a_connection_s_debug_lines_carry_its_exact_peer_and_its_own_id() {
    let mut server = Logged::start(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        "debug",
        1,
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&server.addrs[0]).unwrap();
        let me = s.local_addr().unwrap().to_string();
        s.write_all(b"ping").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"ping");
        let closed = server.event("closed");
        assert_event(&closed, "DEBUG");
        assert_eq!(closed["span"]["service"], "echo", "{closed}");
        assert_eq!(closed["span"]["peer"], me.as_str(), "{closed}");
        ids.push(closed["span"]["conn"].as_u64().expect("conn id"));
        server.seen.clear();
    }
    assert_ne!(ids[0], ids[1], "two connections share an id");
}

#[test]
fn the_human_format_stays_the_default() {
    let server = Logged::start(&["serve", "echo", "--listen", "127.0.0.1:0"], "info", 1);
    // SIGTERM makes the server say it is shutting down: a line of text, not JSON.
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let line = server.lines.recv_timeout(LIMIT).expect("a log line");
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    assert!(line.contains(" INFO shutting down"), "{line}");
}

impl Logged {
    /// Stops the server with SIGTERM and returns every line it wrote on standard error (the
    /// lines already read included), up to its exit.
    fn all_lines(mut self) -> Vec<String> {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let mut all: Vec<String> = self.seen.drain(..).map(|v| v.to_string()).collect();
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => all.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return all,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the server did not stop: {all:?}"),
            }
        }
    }
}

/// A key made with `taojie keygen` in `dir`.
fn keygen(dir: &std::path::Path) -> String {
    let key = dir.join("k").to_str().unwrap().to_string();
    let (status, _, err) = run_with_input(&["keygen", &key], b"", LIMIT);
    assert!(status.success(), "keygen: {err}");
    key
}

/// Asserts that `line` is an info line of a connection from loopback, in the human format.
fn assert_info_from_a_peer(line: &str) {
    assert!(line.contains(" INFO "), "not at info: {line}");
    assert!(line.contains(" peer=127.0.0.1:"), "no peer=ADDR: {line}");
}

#[test]
fn the_human_format_names_the_peer_on_every_line_of_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    let server = Logged::start(
        &["serve", "exec", "--listen", "127.0.0.1:0", "--key", &key],
        "info",
        1,
    );
    let addr = server.addrs[0].clone();
    let (status, out, err) =
        run_with_input(&["exec", &addr, "--key", &key, "--", "uname"], b"", LIMIT);
    assert!(status.success(), "exec: {err}");
    assert!(!out.is_empty());
    let lines = server.all_lines();
    let of_conn: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("running") || l.contains("command ended"))
        .collect();
    assert_eq!(of_conn.len(), 2, "{lines:?}");
    for line in of_conn {
        assert_info_from_a_peer(line);
        assert!(line.contains("service=\"exec\""), "{line}");
    }
}

#[test]
fn a_client_s_own_mistakes_show_on_the_server_as_info_and_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("there.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("up.txt"), b"y").unwrap();
    let root = root.to_str().unwrap();
    let files = Logged::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root,
            "--key",
            &key,
            "--read-only",
        ],
        "info",
        1,
    );
    let exec = Logged::start(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--allow",
            "true",
        ],
        "info",
        1,
    );
    let (f, e) = (files.addrs[0].clone(), exec.addrs[0].clone());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let up = dir.path().join("up.txt");
    let mistakes: [&[&str]; 5] = [
        &["ls", &f, "nope", "--key", &key],
        &["ls", &f, "there.txt/inside", "--key", &key],
        &["get", &f, "nope", "-o", out, "--key", &key],
        &["put", &f, up.to_str().unwrap(), "--key", &key],
        &["exec", &e, "--key", &key, "--", "uname"],
    ];
    for args in mistakes {
        let (status, _, err) = run_with_input(args, b"", LIMIT);
        assert!(!status.success(), "{args:?} succeeded: {err}");
    }
    let lines: Vec<String> = files
        .all_lines()
        .into_iter()
        .chain(exec.all_lines())
        .collect();
    for what in [
        "listing refused",
        "download refused",
        "upload refused",
        "request refused",
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} line: {lines:?}"));
        assert_info_from_a_peer(line);
    }
    let refused = lines.iter().filter(|l| l.contains("refused")).count();
    assert_eq!(refused, 5, "one line per mistake: {lines:?}");
    for line in &lines {
        assert!(
            !line.contains(" WARN "),
            "a client's mistake warned: {line}"
        );
        assert!(!line.contains("connection lost"), "{line}");
        // No Rust debug structures (`refusal=Refuse { message: … }`).
        assert!(!line.contains(" { "), "a debug structure: {line}");
    }
}
