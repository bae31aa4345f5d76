//! Shared test fixtures: start the real `taojie` binary, wait for the address lines it prints,
//! and stop it by its PID.
#![allow(dead_code)]

pub mod need;
pub mod ports;

#[allow(unused_imports)]
pub use ports::unused_port;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_taojie")
}

/// Path of a peer program in `tests/peers/` (Python clients and servers written like the
/// seeds', drivers for the terminal).
pub fn peer_script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// This test binary's scratch home: `XDG_CONFIG_HOME` and `XDG_DATA_HOME` of every process a
/// test starts through this module point into it, so no test reads or writes the user's own
/// known_hosts, contacts or key (the README's own examples write there). Removed at exit.
fn scratch_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("taojie-test-home-")
            .tempdir()
            .expect("a scratch home")
            .keep();
        for sub in ["config", "data"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
        }
        extern "C" fn remove() {
            if let Some(dir) = HOME.get() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        #[allow(unsafe_code)]
        // SAFETY: atexit(3) with a function that takes nothing and does not unwind.
        unsafe {
            libc::atexit(remove);
        }
        dir
    })
}

/// Gives `cmd` an environment of the test's own: `RUST_LOG` removed (a developer's
/// `RUST_LOG=debug` must not change the lines tests read), and `XDG_CONFIG_HOME` and
/// `XDG_DATA_HOME` in this binary's scratch home. What the test set or removed on `cmd`
/// itself stays; a command whose `PATH` the test set (after `env_clear`) is left alone.
pub fn isolate(cmd: &mut Command) -> &mut Command {
    let set: Vec<String> = cmd
        .get_envs()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    if set.iter().any(|k| k == "PATH") {
        return cmd;
    }
    if !set.iter().any(|k| k == "RUST_LOG") {
        cmd.env_remove("RUST_LOG");
    }
    for (var, sub) in [("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")] {
        if !set.iter().any(|k| k == var) {
            cmd.env(var, scratch_home().join(sub));
        }
    }
    cmd
}

/// `Command::new(program)`, [`isolate`]d: how a test starts taojie (or an example) itself
/// when none of the runners here fits.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    isolate(&mut cmd);
    cmd
}

/// A running taojie server and the addresses it announced.
pub struct Server {
    pub child: Child,
    /// `(service, proto, address)` per announced socket.
    pub lines: Vec<(String, String, String)>,
    stdout_rest: Option<mpsc::Receiver<String>>,
    /// The server's stderr lines, when started by [`Server::spawn_capturing`].
    err: Option<mpsc::Receiver<String>>,
    /// Stderr lines read so far by [`Server::wait_stderr`].
    pub stderr: Vec<String>,
}

/// Reads lines from a child's stream on a thread, so a test can wait with a timeout.
pub fn line_channel<R: Read + Send + 'static>(stream: R) -> mpsc::Receiver<String> {
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
    /// Starts `taojie ARGS` and waits (30 s at most) for `n` address lines on stdout.
    pub fn start(args: &[&str], n: usize) -> Server {
        Self::start_with_env(args, n, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], n: usize, env: &[(&str, &str)]) -> Server {
        Self::start_program(bin(), args, n, env)
    }

    /// Starts `program ARGS` (a wrapper that ends by exec'ing taojie, so the PID stays the
    /// server's) and waits, as [`Server::start`] does, for `n` address lines.
    pub fn start_program(program: &str, args: &[&str], n: usize, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::inherit());
        Self::spawn(cmd, n)
    }

    /// Runs `cmd` (taojie, or a wrapper that ends by exec'ing it) with its stderr read into
    /// lines for [`Server::wait_stderr`], and waits for `n` address lines.
    pub fn spawn_capturing(mut cmd: Command, n: usize) -> Server {
        cmd.stderr(Stdio::piped());
        Self::spawn(cmd, n)
    }

    /// Runs `cmd` ([`isolate`]d) with stdin closed and stdout read, and waits for `n`
    /// address lines.
    fn spawn(mut cmd: Command, n: usize) -> Server {
        let mut child = isolate(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start taojie");
        let err = child.stderr.take().map(line_channel);
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let rx = line_channel(stdout);
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let said: Vec<String> = err.iter().flat_map(|e| e.try_iter()).collect();
                    panic!(
                        "{cmd:?} announced {} of {n} sockets; stderr {said:?}",
                        lines.len()
                    );
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
            err,
            stderr: Vec::new(),
        }
    }

    /// Waits (30 s at most) for a stderr line containing `text`; returns it. Only for a
    /// server started by [`Server::spawn_capturing`].
    pub fn wait_stderr(&mut self, text: &str) -> String {
        let err = self.err.as_ref().expect("stderr captured");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match err.recv_timeout(left) {
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

    /// Reads the server's stderr until it closes (the server exited) or `limit` passes;
    /// returns every line read so far, those [`Server::wait_stderr`] read included. Only for
    /// a server started by [`Server::spawn_capturing`].
    pub fn stderr_until_closed(&mut self, limit: Duration) -> &[String] {
        let err = self.err.as_ref().expect("stderr captured");
        let deadline = Instant::now() + limit;
        while let Ok(line) = err.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.stderr.push(line);
        }
        &self.stderr
    }

    /// Reads the server's stdout until it closes (the server exited) or `limit` passes;
    /// returns the lines printed after the address lines it was started with.
    pub fn stdout_until_closed(&mut self, limit: Duration) -> Vec<String> {
        let out = self.stdout_rest.as_ref().expect("stdout read");
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        while let Ok(line) = out.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        }
        lines
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

/// Kills `child` (SIGKILL) if it is still running after `limit`, and says so on stderr: a
/// bound on a wait that cannot take a timeout itself (a blocking read of its pipe, a
/// `wait_with_output`), which then ends with the pipe closed. Fire and forget: the child is
/// named by a pidfd, so once it has exited and been reaped nothing else can be hit.
pub fn kill_after(child: &Child, limit: Duration, what: &str) {
    #[allow(unsafe_code)]
    // SAFETY: pidfd_open(2) on the PID of a child not yet reaped; returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        panic!("pidfd_open: {}", std::io::Error::last_os_error());
    }
    let what = what.to_string();
    thread::spawn(move || {
        thread::sleep(limit);
        #[allow(unsafe_code)]
        // SAFETY: the descriptor is ours; signalling a process that has gone fails (ESRCH).
        let killed = unsafe {
            let rc = libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd as libc::c_int,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
            libc::close(fd as libc::c_int);
            rc == 0
        };
        if killed {
            use std::io::Write;
            let line = format!("{what} still running after {limit:?}: killed (a hang)\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    });
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
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(&mut cmd, input, limit)
}

/// `Command::output`, bounded: stdin closed, and the child killed after `limit` (a hang,
/// said on stderr) so that the wait for it ends.
pub trait OutputWithin {
    /// Runs the command to its end, or to `limit`; its status and output.
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output>;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output> {
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        kill_after(&child, limit, &format!("{:?}", self.get_program()));
        child.wait_with_output()
    }
}

/// Runs `cmd` ([`isolate`]d, stdio piped) with `input` on stdin, killed after `limit`;
/// returns (status, stdout, stderr).
pub fn run_command(
    cmd: &mut Command,
    input: &[u8],
    limit: Duration,
) -> (ExitStatus, Vec<u8>, String) {
    use std::io::Write;
    let program = format!("{:?}", cmd.get_program());
    let args: Vec<_> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = isolate(cmd)
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

/// Starts `program ARGS` with stdin, stdout and stderr piped.
fn spawn_piped(program: &str, args: &[&str]) -> Child {
    isolate(&mut Command::new(program))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"))
}

/// A process with piped stdio, its stdout and stderr read on threads, so a test can feed
/// stdin, wait for a stderr line (the netcat listener prints its address there) and for
/// stdout bytes, each with a time limit.
pub struct Proc {
    pub child: Child,
    stdin: Option<thread::JoinHandle<Option<std::process::ChildStdin>>>,
    out: mpsc::Receiver<Vec<u8>>,
    err: mpsc::Receiver<String>,
    /// Stdout so far.
    pub stdout: Vec<u8>,
    /// Stderr lines so far.
    pub stderr: Vec<String>,
}

impl Proc {
    /// Starts `program ARGS` with stdin, stdout and stderr piped.
    pub fn spawn(program: &str, args: &[&str]) -> Proc {
        let mut child = spawn_piped(program, args);
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, out) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let err = line_channel(child.stderr.take().unwrap());
        let stdin = Some(thread::spawn(move || stdin));
        Proc {
            child,
            stdin,
            out,
            err,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Writes `data` to stdin on a thread, after whatever was fed before; stdin stays open.
    pub fn feed(&mut self, data: Vec<u8>) {
        let prev = self.stdin.take().expect("stdin already closed");
        self.stdin = Some(thread::spawn(move || {
            use std::io::Write;
            let mut stdin = prev.join().ok()??;
            stdin.write_all(&data).ok()?;
            Some(stdin)
        }));
    }

    /// Closes stdin once everything fed so far is written (without waiting for that).
    pub fn close_stdin(&mut self) {
        if let Some(t) = self.stdin.take() {
            thread::spawn(move || drop(t.join()));
        }
    }

    /// Waits (up to `limit`) for a stderr line starting with `prefix`; returns the line.
    pub fn wait_stderr(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        if let Some(l) = self.stderr.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => {
                    self.stderr.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line {prefix:?} in {limit:?}; got {:?}",
                    self.stderr
                ),
            }
        }
    }

    /// Waits (up to `limit`) for more stdout; returns whether any came.
    pub fn more_stdout(&mut self, limit: Duration) -> bool {
        match self.out.recv_timeout(limit) {
            Ok(chunk) => {
                self.stdout.extend_from_slice(&chunk);
                true
            }
            Err(_) => false,
        }
    }

    /// Waits (up to `limit`) until stdout holds at least `n` bytes; returns them all.
    pub fn wait_stdout(&mut self, n: usize, limit: Duration) -> &[u8] {
        let deadline = Instant::now() + limit;
        while self.stdout.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(_) => panic!(
                    "stdout has {} of {n} bytes after {limit:?}",
                    self.stdout.len()
                ),
            }
        }
        &self.stdout
    }

    /// Closes stdin, waits (up to `limit`) for the exit, and gathers the rest of the output;
    /// returns (status, all stdout, all stderr).
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<u8>, String) {
        self.close_stdin();
        let Some(status) = wait_timeout(&mut self.child, limit) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "process did not exit in {limit:?}; stderr so far: {:?}",
                self.stderr
            );
        };
        // The pipes close at exit (unless a grandchild holds them): drain with a bound.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(chunk) = self
            .out
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stdout.extend_from_slice(&chunk);
        }
        while let Ok(line) = self
            .err
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stderr.push(line);
        }
        (
            status,
            std::mem::take(&mut self.stdout),
            self.stderr.join("\n"),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
