//! The relay engine: two [`Stream`]s joined both ways until each direction has ended, with
//! half-close carried across (the end of one side's input becomes the end of the other
//! side's output, and the other direction goes on), the bytes counted each way, and one log
//! line per connection ([`Session`]). `forward` runs every connection through it, and so does
//! the proxy after the request is answered.
//!
//! Two ways to move the bytes: where both ends are plain sockets (TCP or Unix) on Linux,
//! splice(2) through a pipe per direction, so the payload never enters user space
//! (`splice`); between a plain socket and a Noise channel (a tunnel's ends), plaintext read
//! straight into the records that carry it and records opened where they land (`sealed`);
//! otherwise — a TLS end — a copy through a buffer (`copy`). The log calls both of the
//! latter `copy`: the bytes cross user space.
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::transport::Stream;

mod copy;
mod sealed;
mod session;
#[cfg(target_os = "linux")]
mod splice;

pub use session::Session;

/// Bytes relayed each way so far; read while the relay runs (or after it was cut off).
#[derive(Debug, Default)]
pub struct Totals {
    /// From the client (the accepted side) to the target.
    pub up: AtomicU64,
    /// From the target back to the client.
    pub down: AtomicU64,
    /// A TLS side ended without close_notify (taken as its end, as ncat ends that way).
    pub unclean: std::sync::atomic::AtomicBool,
}

impl Totals {
    /// (up, down) now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }
}

/// Which end of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The accepted side.
    Client,
    /// The side the relay opened.
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "the client",
            Side::Target => "the target",
        })
    }
}

/// A relay that ended with an error: reading from or writing to one side failed (a reset,
/// a broken Noise record, TLS cut short without close_notify).
#[derive(Debug, thiserror::Error)]
#[error("{verb} {side}: {error}")]
pub struct Broken {
    /// Whose socket failed.
    pub side: Side,
    /// "reading" or "writing".
    pub verb: &'static str,
    /// What failed.
    pub error: io::Error,
}

impl Broken {
    fn read(side: Side, error: io::Error) -> Broken {
        Broken {
            side,
            verb: "reading",
            error,
        }
    }

    fn write(side: Side, error: io::Error) -> Broken {
        Broken {
            side,
            verb: "writing",
            error,
        }
    }
}

/// How the bytes were moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// splice(2) through pipes: no copy through user space.
    Splice,
    /// read and write through a buffer.
    Copy,
}

impl Method {
    /// The word for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Splice => "splice",
            Method::Copy => "copy",
        }
    }
}

/// Relays `client` and `target` both ways until both directions have ended, counting into
/// `totals`. Ends with the first error either way; dropping the future (an idle timeout, a
/// shutdown's deadline) closes both at once.
pub async fn relay(client: Stream, target: Stream, totals: &Totals) -> Result<Method, Broken> {
    #[cfg(target_os = "linux")]
    if let (Some(c), Some(t)) = (client.plain(), target.plain()) {
        // Pipes cannot be had (EMFILE, say): copying still works.
        if let Ok(pipes) = splice::Pipes::new() {
            splice::relay(c, t, pipes, totals).await?;
            return Ok(Method::Splice);
        }
    }
    match (client, target) {
        (Stream::Plain(plain), Stream::Noise(noise)) => {
            sealed::relay(&plain, *noise, Side::Target, totals).await?
        }
        (Stream::Noise(noise), Stream::Plain(plain)) => {
            sealed::relay(&plain, *noise, Side::Client, totals).await?
        }
        (client, target) => copy::relay(client, target, totals).await?,
    }
    Ok(Method::Copy)
}
