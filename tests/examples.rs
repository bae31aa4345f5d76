//! The programs in `examples/`, built on `taojie::server` as a user of the crate would, run
//! and talked to over loopback.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::wait_timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A running example and the address it announced.
struct Example {
    child: Child,
    addr: String,
    stdout: mpsc::Receiver<String>,
}

impl Example {
    /// Starts `examples/NAME` on 127.0.0.1:0 and waits for its `NAME tcp ADDR` line.
    fn start(name: &str) -> Example {
        let mut child = crate::common::command(example(name))
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start example {name}: {e}"));
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = stdout.recv_timeout(LIMIT).expect("the announce line");
        let addr = line
            .strip_prefix(&format!("{name} tcp "))
            .unwrap_or_else(|| panic!("announce line {line:?}"))
            .to_string();
        Example {
            child,
            addr,
            stdout,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's binary, which `cargo test` builds beside the test binaries
/// (`target/<profile>/examples/NAME`); when only this test was built, cargo builds it now.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // Without the variables cargo sets for a test run: build scripts that watch one
        // (ring's watches CARGO_MANIFEST_DIR) would rebuild half the tree now and again after.
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy();
            if [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| var.starts_with(p))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*var)
            {
                cargo.env_remove(&*var);
            }
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "cargo build --example {name}");
    }
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// Sends `line` and reads one line back.
fn ask(reader: &mut BufReader<TcpStream>, line: &str) -> String {
    reader
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    answer.trim_end().to_string()
}

#[test]
fn upper_answers_the_seeds_client_and_serves_many_at_once() {
    let server = Example::start("upper");
    // A client that connects and says nothing holds its handler, as in socketserver's
    // TCPServer it would hold the whole server; here the next client is served all the same.
    let _silent = server.connect();
    // The seed's client: `sendall(data + "\n")`, then `recv(1024)`.
    let mut s = server.connect();
    s.write_all(b"hello\n").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"HELLO");
    // The server prints who wrote what, as the seed's handler does.
    let who = server.stdout.recv_timeout(LIMIT).unwrap();
    assert_eq!(who, format!("{} wrote:", s.local_addr().unwrap()));
    assert_eq!(server.stdout.recv_timeout(LIMIT).unwrap(), "hello");
}

#[test]
fn kv_shares_its_store_between_clients_and_bounds_lines() {
    let mut server = Example::start("kv");
    let mut ann = BufReader::new(server.connect());
    let mut bob = BufReader::new(server.connect());
    assert_eq!(ask(&mut ann, "GET colour"), "NOTFOUND");
    assert_eq!(ask(&mut ann, "SET colour deep blue"), "OK");
    assert_eq!(ask(&mut bob, "GET colour"), "VALUE deep blue");
    assert_eq!(ask(&mut bob, "DEL colour"), "OK");
    assert_eq!(ask(&mut ann, "GET colour"), "NOTFOUND");
    assert!(ask(&mut ann, "FLY away").starts_with("ERR "));
    assert_eq!(ask(&mut ann, "QUIT"), "BYE");
    let mut rest = String::new();
    assert_eq!(ann.read_to_string(&mut rest).unwrap(), 0, "open after QUIT");

    // A line past the limit gets an error and the connection closes; others go on.
    let long = format!("SET k {}", "x".repeat(4096));
    assert_eq!(ask(&mut bob, &long), "ERR line too long");
    // Closed: an end of stream, or a reset (the rest of the long line was never read). A
    // read that times out is a connection left open.
    let mut rest = String::new();
    match bob.read_to_string(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("open after an over-long line: {e}"),
    }
    assert_eq!(rest, "", "more after the error line");
    let mut carol = BufReader::new(server.connect());
    assert_eq!(ask(&mut carol, "SET k v"), "OK");

    // Ctrl-C stops it cleanly.
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGINT);
    }
    drop(carol);
    let status = wait_timeout(&mut server.child, LIMIT).expect("kv did not stop on SIGINT");
    assert!(status.success(), "{status}");
}
