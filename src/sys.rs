//! The few operating-system calls std does not wrap: the open-file limit, CPU usage,
//! killing a whole process group, being a subreaper and finding its children, free disk
//! space, early writeback, the terminal's width and modes, TCP keepalive, and renaming
//! without replacing.
#![allow(unsafe_code)]

use std::time::Duration;

/// How often a client probes a quiet connection (TCP keepalive): after 10 s of silence,
/// then every 5 s, giving up after 3 unanswered probes. A peer that lost the connection
/// (a reset that reached only its side) answers the first probe with a reset; a vanished
/// one is given up on after about 25 s, where TCP alone would wait for ever.
pub const CLIENT_KEEPALIVE: (Duration, Duration, u32) =
    (Duration::from_secs(10), Duration::from_secs(5), 3);
/// The same for a server's accepted connections, gentler for many of them: 60 s, 10 s, 3
/// probes, so a client gone without a word is noticed within 90 s rather than at the idle
/// timeout or never (exec has none while its command runs).
pub const SERVER_KEEPALIVE: (Duration, Duration, u32) =
    (Duration::from_secs(60), Duration::from_secs(10), 3);

/// Turns on TCP keepalive on `socket` with (idle, interval, probes); errors are ignored,
/// since the connection works without it.
pub fn keepalive<S: std::os::fd::AsFd>(
    socket: &S,
    (idle, interval, probes): (Duration, Duration, u32),
) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(interval)
        .with_retries(probes);
    let _ = socket2::SockRef::from(socket).set_tcp_keepalive(&ka);
}

/// Raises the soft limit on open files to the hard limit, so a server can hold many
/// thousands of connections without the user reaching for `ulimit`.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// CPU time (user plus system) this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sends SIGKILL to every process in the process group `pgid` (a command spawned as a group
/// leader, so its children go with it). Group ids 0 and 1 are refused: `kill(0)` and
/// `kill(-1)` would hit our own group or every process we may signal.
pub fn kill_process_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers; a group that is already gone gives ESRCH.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent
/// dies is given to it rather than to init, so what a command leaves running (`setsid -f`, a
/// double fork) stays within its reach.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the process `cmd` starts a child subreaper too (the setting survives `execve`):
/// while it runs, what its own children leave behind is given to it, and when it dies, to
/// us (see [`become_subreaper`]).
pub fn subreaper_on_spawn(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and makes one system call,
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The processes whose parent is this process, read from `/proc/*/stat`.
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(me)
        })
        .collect()
}

/// Sends SIGKILL to process `pid` (never to 0 or 1, or to this process).
pub fn kill_process(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if pid <= 1 || pid as u32 == std::process::id() {
        return;
    }
    // SAFETY: kill(2) takes plain integers.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Reaps child `pid` if it has ended; whether it is gone (reaped now, or not our child).
pub fn try_reap(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: waitpid writes the status into the integer we own.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc != 0
}

/// Bytes an unprivileged user may still write on the filesystem holding `path`.
pub fn free_space(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: statvfs reads the NUL-terminated path and fills the zeroed struct we own.
    let (rc, st) = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st), st)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Waits until `len` bytes of `file` from `offset` are on disk (starting the writeback of any
/// still dirty), then drops them from the page cache: a file received at the disk's pace keeps
/// only its last few megabytes in memory, instead of pushing out everyone else's cache (and
/// making the kernel reclaim it) as it grows. A write error found while waiting is returned:
/// the wait consumes it, so a later fsync of the same open file would not report it.
pub fn settle_written(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let Some(nonzero) = std::num::NonZeroU64::new(len) else {
        return Ok(());
    };
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: sync_file_range only reads its integer arguments; a bad fd is an error return.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            flags,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Only a hint: clean pages go, any redirtied meanwhile stay.
    let _ = rustix::fs::fadvise(file, offset, Some(nonzero), rustix::fs::Advice::DontNeed);
    Ok(())
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to disk now, without
/// waiting: a large file's final fsync then finds little left to do.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; a bad fd is an error return.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Columns of the terminal on stdout, asked afresh each time so a resize is seen at once;
/// `None` when stdout is not a terminal or the terminal does not say.
pub fn terminal_columns() -> Option<usize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass, or fails with ENOTTY.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// The modes of the terminal on stdin, as `tcgetattr` gives them, to put back later.
pub struct TerminalModes(libc::termios);

impl TerminalModes {
    /// The modes of the terminal on stdin now; `None` when stdin is not a terminal.
    pub fn save() -> Option<TerminalModes> {
        // SAFETY: termios is plain data; tcgetattr fills it in or fails with ENOTTY.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to one termios.
        let rc = unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) };
        (rc == 0).then_some(TerminalModes(t))
    }

    /// Puts the terminal on stdin back in these modes (errors are ignored: there is no
    /// better way left to restore it).
    pub fn restore(&self) {
        // SAFETY: a valid pointer to a termios that tcgetattr filled in.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0) };
    }
}

/// Renames `from` to `to` (both absolute or relative to the working directory) unless `to`
/// exists: renameat2 with RENAME_NOREPLACE, so nothing that appeared under the final name in
/// the meantime is replaced. `AlreadyExists` when `to` exists.
pub fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: renameat2 reads the two NUL-terminated paths we own.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
