//! `taojie serve --config FILE` against real sockets: `start.rs` several services from one
//! file and flags over it; `errors.rs` bad files (one line naming the line, non-zero exit)
//! and `--check-config`, which binds nothing; `reload.rs` SIGHUP (limits and log level
//! applied with a connection open, an address change reported as needing a restart);
//! `example.rs` the shipped config/taojie.toml, checked and started.
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod example;
mod floats;
mod reload;
mod start;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long any one wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(10);

/// A `taojie serve --config` process, its announce lines and its stderr lines.
pub type Served = common::Server;

/// Starts `taojie ARGS` (RUST_LOG unset, so the file's log level counts) with its stderr
/// captured, and waits for `n` announce lines.
pub fn serve(args: &[&str], n: usize) -> Served {
    let mut cmd = crate::common::command(common::bin());
    cmd.args(args).env_remove("RUST_LOG");
    Served::spawn_capturing(cmd, n)
}

/// Writes `text` to `name` in `dir`; returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A TCP connection with read and write timeouts.
pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    s
}

/// Sends `line` on `s` and returns what comes back, one line.
pub fn echo(s: &mut TcpStream, line: &str) -> String {
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => got.push(byte[0]),
            Err(e) => panic!("echo read: {e}"),
        }
    }
    String::from_utf8_lossy(&got).trim_end().to_string()
}

/// Whether the server closed `s` without answering (a refused connection): `false` when it
/// answered. A server that does neither within [`LIMIT`] fails the test: a read timeout is
/// not a refusal.
pub fn closed_unanswered(s: &mut TcpStream) -> bool {
    use std::io::ErrorKind;
    let _ = s.write_all(b"hello\n");
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the server neither answered nor closed the connection in {LIMIT:?}")
        }
        Err(_) => true,
    }
}

/// Runs `taojie ARGS` to the end; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = common::run_with_input(args, b"", LIMIT);
    (status.success(), String::from_utf8_lossy(&out).into(), err)
}
