//! Spawning commands and making sure they end: each command leads a process group of its
//! own, and a [`Group`] guard kills the whole group (children and grandchildren too) when the
//! connection that asked for it goes away, however it goes.
use std::ffi::OsStr;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use tokio::net::UnixStream;
use tokio::process::{Child, ChildStderr, ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A running command's process group; dropping the guard kills the group.
#[derive(Debug)]
pub struct Group {
    pgid: u32,
    armed: bool,
}

impl Group {
    /// Kills every process in the group now.
    pub fn kill(&self) {
        if self.armed {
            crate::sys::kill_process_group(self.pgid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A spawned command with its standard streams.
#[derive(Debug)]
pub struct Spawned {
    /// The group leader.
    pub child: Child,
    /// Kills the group when dropped.
    pub group: Group,
    /// The command's stdin, when it was given one.
    pub stdin: Option<ChildStdin>,
    /// The command's stdout: our end of a socket pair (see [`spawn`]).
    pub stdout: UnixStream,
    /// The command's stderr.
    pub stderr: ChildStderr,
}

/// Starts `argv[0]` with the rest as arguments (no shell), in a new process group; stdin is
/// a pipe with `stdin`, else /dev/null; stderr is a pipe.
///
/// Stdout is a Unix socket pair rather than a pipe (as sshd gives its commands, and socat's
/// EXEC): a pipe holds 64 KiB, so a command writing a stream fills it and waits for the
/// server at every 64 KiB, where a socket buffers about 200 KiB. `socat -u EXEC:'cat 1GiB'
/// STDOUT` takes 0.35 s through a socket pair and 0.63 s through pipes on the benchmark
/// machine. To the command it is a write-only stream like a pipe: it reads nothing from it, and
/// a write after the server has gone gets EPIPE (and SIGPIPE).
pub fn spawn<S: AsRef<OsStr>>(argv: &[S], stdin: bool) -> io::Result<Spawned> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.shutdown(Shutdown::Write)?;
    theirs.shutdown(Shutdown::Read)?;
    ours.set_nonblocking(true)?;
    let stdout = UnixStream::from_std(ours)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .process_group(0)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    // Our copy of the command's end closes here, so its exit is our end of file.
    drop(cmd);
    let mut child = spawned?;
    let pgid = child.id().unwrap_or(0);
    let group = Group { pgid, armed: true };
    let stdin = child.stdin.take();
    let stderr = child.stderr.take().expect("stderr is piped");
    Ok(Spawned {
        child,
        group,
        stdin,
        stdout,
        stderr,
    })
}

/// Waits for the group leader to exit, then kills what is left of its group (a background
/// job would otherwise hold its output open and outlive the connection).
pub async fn reap(child: &mut Child, group: &mut Group) -> io::Result<ExitStatus> {
    let status = child.wait().await?;
    group.kill();
    // The leader is reaped, so its pid may be reused: never signal that group again.
    group.armed = false;
    Ok(status)
}

/// The status as a shell reports it (the code, or 128+N after signal N) and the signal.
pub fn exit_code(status: ExitStatus) -> (i32, Option<i32>) {
    match (status.code(), status.signal()) {
        (_, Some(sig)) => (128 + sig, Some(sig)),
        (Some(code), None) => (code, None),
        (None, None) => (255, None),
    }
}

/// The status a shell gives a command it could not start: 127 not found, 126 otherwise.
pub fn spawn_failure_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// The cap on commands running at once, shared by every listener of one server.
#[derive(Clone, Debug)]
pub struct ProcLimit {
    sem: Arc<Semaphore>,
    max: usize,
}

impl ProcLimit {
    /// At most `max` commands at once (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        ProcLimit {
            sem: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot for one command, or the message to send when all are taken.
    pub fn try_acquire(&self) -> Result<OwnedSemaphorePermit, String> {
        self.sem.clone().try_acquire_owned().map_err(|_| {
            format!(
                "too many commands running on this server (limit {}); try again later",
                self.max
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statuses_read_as_a_shell_reports_them() {
        for (script, want) in [("exit 3", (3, None)), ("kill -TERM $$", (143, Some(15)))] {
            let mut s = spawn(&["sh", "-c", script], false).unwrap();
            let status = reap(&mut s.child, &mut s.group).await.unwrap();
            assert_eq!(exit_code(status), want, "{script}");
        }
        let e = spawn(&["/nonexistent/program"], false).unwrap_err();
        assert_eq!(spawn_failure_code(&e), 127);
    }

    #[test]
    fn the_limit_refuses_past_its_cap() {
        let limit = ProcLimit::new(1);
        let first = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().unwrap_err().contains("limit 1"));
        drop(first);
        assert!(limit.try_acquire().is_ok());
    }
}
