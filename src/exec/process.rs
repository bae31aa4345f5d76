//! Spawning commands and making sure they end: each command leads a process group of its
//! own, and a [`Group`] guard kills the whole group (children and grandchildren too) when the
//! connection that asked for it goes away, however it goes.
//!
//! A process can leave its group (`setsid -f`, `setpgid`) and outlive it, so the server is a
//! subreaper ([`adopt_orphans`]) and so is each command's first process: whatever a command
//! leaves behind ends up a child of the server once the command's first process has died,
//! and [`sweep`] kills every such child that is not a running command's leader.
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::process::{Child, ChildStderr, ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

/// The leaders of the commands running now: the server's children that are not leftovers.
static LEADERS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// This process is a subreaper ([`adopt_orphans`]), so leftovers come to it.
static ADOPTING: AtomicBool = AtomicBool::new(false);

fn leaders() -> MutexGuard<'static, BTreeSet<u32>> {
    LEADERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process the subreaper of every command it runs, so that [`sweep`] can kill
/// what they leave running; a server calls it once at start.
pub fn adopt_orphans() {
    match crate::sys::become_subreaper() {
        Ok(()) => ADOPTING.store(true, Ordering::Relaxed),
        Err(e) => warn!(
            error = %e,
            "cannot become a subreaper: a command that leaves its process group (setsid) may outlive it"
        ),
    }
}

/// Kills and reaps what commands left behind: every child of this process that is not the
/// leader of a running command (killing one may give us its own children: again, until none
/// is left). Nothing when this process is no subreaper.
pub async fn sweep() {
    if ADOPTING.load(Ordering::Relaxed) {
        let _ = tokio::task::spawn_blocking(sweep_now).await;
    }
}

fn sweep_now() {
    for _ in 0..32 {
        let orphans: Vec<u32> = {
            // Held while killing: no command is spawned between the look and the kill.
            let leaders = leaders();
            let orphans: Vec<u32> = crate::sys::children()
                .into_iter()
                .filter(|pid| !leaders.contains(pid))
                .collect();
            orphans
                .iter()
                .for_each(|&pid| crate::sys::kill_process(pid));
            orphans
        };
        if orphans.is_empty() {
            return;
        }
        info!(
            processes = orphans.len(),
            "killed what a command left running"
        );
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut left = orphans;
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|&pid| !crate::sys::try_reap(pid));
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

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

    /// The leader is reaped (its pid may be reused): never signal that group again.
    fn disarm(&mut self) {
        self.armed = false;
        leaders().remove(&self.pgid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
            self.disarm();
            // The leader dies a moment after the signal; what it leaves comes to us then.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    sweep().await;
                });
            }
        }
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
    if ADOPTING.load(Ordering::Relaxed) {
        crate::sys::subreaper_on_spawn(&mut cmd);
    }
    let spawned = {
        // Listed before a sweep can see it: held from the fork to the entry.
        let mut leaders = leaders();
        let spawned = cmd.spawn();
        if let Some(pid) = spawned.as_ref().ok().and_then(Child::id) {
            leaders.insert(pid);
        }
        spawned
    };
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
/// job would otherwise hold its output open and outlive the connection), and what left it.
pub async fn reap(child: &mut Child, group: &mut Group) -> io::Result<ExitStatus> {
    let status = child.wait().await?;
    group.kill();
    group.disarm();
    sweep().await;
    Ok(status)
}

/// Ends a command that is still running (timed out, or its client left): kills its group,
/// waits for the leader (5 s at most: left to tokio, a killed command would stay a zombie
/// until some other child's exit woke its reaper), and kills what left the group.
pub async fn finish(child: &mut Child, group: &mut Group) {
    group.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    group.disarm();
    sweep().await;
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
