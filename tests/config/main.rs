//! `taojie serve --config FILE` against real sockets: `start.rs` several services from one
//! file and flags over it; `errors.rs` bad files (one line naming the line, non-zero exit)
//! and `--check-config`, which binds nothing; `reload.rs` SIGHUP (limits and log level
//! applied with a connection open, an address change reported as needing a restart);
//! `example.rs` the shipped config/taojie.toml, checked and started.
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod example;
mod reload;
mod start;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(10);

/// A `taojie serve --config` process, its announce lines and its stderr lines.
pub struct Served {
    child: Child,
    /// `(service, proto, address)` per announced socket.
    pub lines: Vec<(String, String, String)>,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    /// Stderr lines read so far.
    pub stderr: Vec<String>,
}

impl Served {
    /// Starts `taojie ARGS` (RUST_LOG unset, so the file's log level counts) and waits for
    /// `n` announce lines.
    pub fn start(args: &[&str], n: usize) -> Served {
        let mut cmd = Command::new(common::bin());
        cmd.args(args).env_remove("RUST_LOG");
        Served::spawn(cmd, n)
    }

    /// Runs `cmd` (which ends by running taojie in the same process) and waits for `n`
    /// announce lines.
    pub fn spawn(mut cmd: Command, n: usize) -> Served {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start taojie");
        let out = common::line_channel(child.stdout.take().unwrap());
        let err = common::line_channel(child.stderr.take().unwrap());
        let mut served = Served {
            child,
            lines: Vec::new(),
            out,
            err,
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + LIMIT;
        while served.lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = served.out.recv_timeout(left) else {
                let err: Vec<String> = served.err.try_iter().collect();
                panic!("announced {:?} of {n}; stderr {err:?}", served.lines);
            };
            let parts: Vec<&str> = line.splitn(3, ' ').collect();
            assert_eq!(parts.len(), 3, "bad announce line {line:?}");
            served
                .lines
                .push((parts[0].into(), parts[1].into(), parts[2].into()));
        }
        served
    }

    /// The address announced for `service` over `proto`.
    pub fn addr(&self, service: &str, proto: &str) -> String {
        self.lines
            .iter()
            .find(|(s, p, _)| s == service && p == proto)
            .map(|(_, _, a)| a.clone())
            .unwrap_or_else(|| panic!("no {service} {proto} line in {:?}", self.lines))
    }

    /// Waits for a stderr line containing `text`; returns it.
    pub fn wait_stderr(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no stderr line with {text:?}; got {:?}", self.stderr),
            }
        }
    }

    /// Sends `sig` to the server, by its PID.
    pub fn signal(&self, sig: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Whether the server closed `s` at once without answering (a refused connection).
pub fn closed_unanswered(s: &mut TcpStream) -> bool {
    let _ = s.write_all(b"hello\n");
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

/// Runs `taojie ARGS` to the end; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = common::run_with_input(args, b"", LIMIT);
    (status.success(), String::from_utf8_lossy(&out).into(), err)
}
