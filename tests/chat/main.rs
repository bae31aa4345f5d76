//! `taojie serve chat` against real clients: nc, taojie chat, Python UDP clients written like
//! the seeds', and raw sockets that misbehave on purpose.
//!
//! This file holds the shared fixtures (line clients run as processes, raw named sockets);
//! `rooms.rs` names, rooms and history with nc and taojie clients; `udp.rs` the hub with
//! seed-style Python clients; `hostile.rs` hostile input; `slow.rs` a silent client and the
//! broker's memory; `key.rs` authentication; `nats.rs` brokers joined through NATS; `terminal.rs` the client's line editor on
//! a pseudo-terminal, its colours, and its plain output on a pipe; `websocket.rs` the page's
//! WebSocket against RFC 6455 with raw frames.
mod amplify;
#[path = "../common/mod.rs"]
mod common;
mod hostile;
mod key;
mod nats;
mod nats_auth;
mod rooms;
mod slow;
mod terminal;
mod udp;
mod web;
mod websocket;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, bin};

/// Time limit for an expected line or a process.
const WAIT: Duration = Duration::from_secs(30);

/// Whether `line` is the broker's welcome of the member `name` (a `taojie chat --name NAME`
/// comes in under its name, with no default name first).
fn welcomed(name: &str) -> impl Fn(&str) -> bool {
    let want = format!("*** welcome, you are {name} in ");
    move |l: &str| l.starts_with(&want)
}

/// A line of a room's history taken apart: the time it was said (`[2025-06-01T14:03:12Z] `
/// in front) and the line; `None` for a line without that time.
fn unstamp(line: &str) -> Option<(chrono::DateTime<chrono::Utc>, &str)> {
    let (stamp, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    Some((at.with_timezone(&chrono::Utc), rest))
}

/// A line client run as a process (nc or taojie chat): lines in on stdin, lines out.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Client {
    fn spawn(mut cmd: Command) -> Client {
        let mut child = common::isolate(&mut cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start client");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            seen: Vec::new(),
        }
    }

    fn nc(addr: &str) -> Client {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut cmd = Command::new("nc");
        cmd.args([host, port]);
        Client::spawn(cmd)
    }

    fn taojie(addr: &str, name: &str, extra: &[&str]) -> Client {
        let mut cmd = crate::common::command(bin());
        cmd.args(["chat", addr, "--name", name]).args(extra);
        Client::spawn(cmd)
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Whether a line already seen, or one still to come, equals `want`.
    fn saw_or_wait(&mut self, want: &str) {
        if !self.seen.iter().any(|l| l == want) {
            self.wait_line(want);
        }
    }

    /// Reads lines until one satisfies `pred`; panics with what was seen after [`WAIT`].
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("never saw {what}; saw {:#?}", self.seen),
            }
        }
    }

    fn wait_line(&mut self, want: &str) {
        self.wait_for(want, |l| l == want);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat_server(extra: &[&str]) -> Server {
    let mut args = vec!["serve", "chat", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let n = 1 + usize::from(extra.contains(&"--udp"));
    Server::start(&args, n)
}

/// A broker on `addr` (one that an earlier broker of the test had, to come back on).
fn chat_server_at(addr: &str) -> Server {
    Server::start(&["serve", "chat", "--listen", addr], 1)
}

/// A raw-socket client that has picked a name (and seen the broker confirm it).
fn raw_client(addr: &str, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    named(TcpStream::connect(addr).unwrap(), name)
}

/// Picks `name` on a connected socket and waits for the broker to confirm it.
fn named(s: TcpStream, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    (&s).write_all(format!("/nick {name}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    while !line.ends_with(&format!("is now known as {name}\n")) {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed before /nick");
    }
    (s, r)
}
