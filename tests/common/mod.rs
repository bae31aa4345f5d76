//! Shared test fixtures: start the real `taojie` binary, wait for the address lines it prints,
//! and stop it by its PID.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_taojie")
}

/// A running taojie server and the addresses it announced.
pub struct Server {
    pub child: Child,
    /// `(service, proto, address)` per announced socket.
    pub lines: Vec<(String, String, String)>,
    stdout_rest: Option<mpsc::Receiver<String>>,
}

/// Reads lines from a child's stream on a thread, so a test can wait with a timeout.
fn line_channel<R: Read + Send + 'static>(stream: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Server {
    /// Starts `taojie ARGS` and waits (10 s at most) for `n` address lines on stdout.
    pub fn start(args: &[&str], n: usize) -> Server {
        Self::start_with_env(args, n, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], n: usize, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start taojie");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let rx = line_channel(stdout);
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!("taojie {args:?} announced {} of {n} sockets", lines.len());
                }
            };
            let parts: Vec<&str> = line.splitn(3, ' ').collect();
            assert_eq!(parts.len(), 3, "bad announce line {line:?}");
            lines.push((parts[0].into(), parts[1].into(), parts[2].into()));
        }
        Server {
            child,
            lines,
            stdout_rest: Some(rx),
        }
    }

    /// The address announced for `service` over `proto`.
    pub fn addr(&self, service: &str, proto: &str) -> String {
        self.lines
            .iter()
            .find(|(s, p, _)| s == service && p == proto)
            .map(|(_, _, a)| a.clone())
            .unwrap_or_else(|| panic!("no {service} {proto} line in {:?}", self.lines))
    }

    /// Sends a signal to the server (by its PID).
    pub fn signal(&self, sig: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        wait_timeout(&mut self.child, limit)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `taojie ARGS` with `input` on stdin; returns (status, stdout, stderr). Killed after
/// `limit`.
pub fn run_with_input(
    args: &[&str],
    input: &[u8],
    limit: Duration,
) -> (ExitStatus, Vec<u8>, String) {
    run_program(bin(), args, input, limit)
}

/// Runs any program with `input` on stdin, killed after `limit`; returns (status, stdout,
/// stderr).
pub fn run_program(
    program: &str,
    args: &[&str],
    input: &[u8],
    limit: Duration,
) -> (ExitStatus, Vec<u8>, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = match wait_timeout(&mut child, limit) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = writer.join();
            panic!(
                "{program} {args:?} did not finish in {limit:?} (stderr: {})",
                err_t.join().unwrap()
            );
        }
    };
    let _ = writer.join();
    (status, out_t.join().unwrap(), err_t.join().unwrap())
}
