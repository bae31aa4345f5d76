//! Zero-copy relaying between two plain sockets on Linux: each direction splices from the
//! source socket into a pipe and from the pipe into the destination socket, so the payload
//! moves as page references inside the kernel and never through user space (socat reads and
//! writes every byte through a buffer instead).
//!
//! Readiness comes from tokio's reactor, through each socket's `ready`/`try_io`; the pipes
//! are non-blocking and never registered: a direction drains its pipe completely before it
//! splices in again, so a splice into the pipe that would block means the socket is empty,
//! and one out of it that would block means the destination's buffer is full.
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::pipe::{
    PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice,
};
use tokio::io::Interest;

use super::{Broken, Side, Totals};
use crate::transport::Plain;

/// Bytes a pipe may grow to (and so the most one splice moves). A pipe starts at the
/// kernel's default (64 KiB), which interactive traffic never fills; a direction whose splice
/// fills it (bulk data) grows its pipe to this once, moving a transfer in a quarter of the
/// system calls. Pipe pages count against a user's `pipe-user-pages-soft` (64 MiB), so idle
/// and interactive connections keep the default; a growth not granted keeps it too.
const PIPE_SIZE: usize = 256 * 1024;
/// A pipe's size when the kernel does not say.
const DEFAULT_PIPE: usize = 64 * 1024;

/// A pipe: its read end and its write end.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(Pipe { read, write })
    }
}

/// A pipe for each direction.
pub(super) struct Pipes(Pipe, Pipe);

impl Pipes {
    pub(super) fn new() -> io::Result<Pipes> {
        Ok(Pipes(Pipe::new()?, Pipe::new()?))
    }
}

/// Relays both ways until both have ended, or the first error.
pub(super) async fn relay(
    client: &Plain,
    target: &Plain,
    Pipes(up, down): Pipes,
    totals: &Totals,
) -> Result<(), Broken> {
    let up = one_way(
        (client, Side::Client),
        (target, Side::Target),
        &up,
        &totals.up,
    );
    let down = one_way(
        (target, Side::Target),
        (client, Side::Client),
        &down,
        &totals.down,
    );
    tokio::try_join!(up, down).map(drop)
}

/// Moves bytes from `src` to `dst` until `src` ends, then sends `dst` end-of-stream.
async fn one_way(
    (src, from): (&Plain, Side),
    (dst, to): (&Plain, Side),
    pipe: &Pipe,
    count: &AtomicU64,
) -> Result<(), Broken> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    let mut size = fcntl_getpipe_size(&pipe.write).unwrap_or(DEFAULT_PIPE);
    let mut grown = false;
    loop {
        let n = loop {
            src.ready(Interest::READABLE)
                .await
                .map_err(|e| Broken::read(from, e))?;
            let moved = src.try_io(Interest::READABLE, || {
                Ok(splice(src, None, &pipe.write, None, size, flags)?)
            });
            match moved {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Broken::read(from, e)),
            }
        };
        if n == 0 {
            return dst.shutdown_write().map_err(|e| Broken::write(to, e));
        }
        let mut left = n;
        while left > 0 {
            dst.ready(Interest::WRITABLE)
                .await
                .map_err(|e| Broken::write(to, e))?;
            let moved = dst.try_io(Interest::WRITABLE, || {
                Ok(splice(&pipe.read, None, dst, None, left, flags)?)
            });
            match moved {
                Ok(m) => {
                    left -= m;
                    count.fetch_add(m as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Broken::write(to, e)),
            }
        }
        if n >= size && !grown {
            grown = true;
            if let Ok(bigger) = fcntl_setpipe_size(&pipe.write, PIPE_SIZE) {
                size = bigger;
            }
        }
    }
}
