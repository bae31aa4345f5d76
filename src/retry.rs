//! One retry policy for everything that tries again: how long to wait ([`Backoff`], doubling
//! from a first wait up to a cap, reset by a success), and which failures are a broken
//! connection worth another try rather than an answer ([`broken`], [`unreachable()`]).
//!
//! Two waits are in use. [`Backoff::accept`], for a listener whose `accept` failed for want of
//! a local resource (EMFILE, ENOBUFS), starts small, since the resource usually comes back
//! soon, and never waits long, since clients are queueing. [`Backoff::reconnect`], for a
//! client or a link that lost its peer, starts at half a second, goes up to ten, and is spread
//! by a random ±25% so that many clients cut at once do not come back at once.
use std::io;
use std::time::Duration;

use crate::framing::FrameError;
use crate::secure::{ConnectError, HandshakeError};

/// Waits between attempts: `first`, then twice as long each time up to `max`; with `jitter`,
/// each a random 0.75-1.25 of that.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    jitter: bool,
    /// Attempts that failed since the last success.
    failures: u32,
}

impl Backoff {
    /// After a failed `accept`: 5 ms, 10 ms, ... up to 1 s, no jitter.
    pub fn accept() -> Backoff {
        Backoff::new(Duration::from_millis(5), Duration::from_secs(1), false)
    }

    /// Before connecting again to a peer that went away: 0.5 s, 1 s, 2 s, ... up to 10 s,
    /// each spread by ±25%.
    pub fn reconnect() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(10), true)
    }

    /// Waits from `first` doubling up to `max`, spread by ±25% with `jitter`.
    pub fn new(first: Duration, max: Duration, jitter: bool) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            jitter,
            failures: 0,
        }
    }

    /// The wait before the next attempt, counting one more failure.
    pub fn next_wait(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.wait(self.failures)
    }

    /// An attempt worked: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait after `n` failures in a row (from 1).
    pub fn wait(&self, n: u32) -> Duration {
        let base = self
            .first
            .saturating_mul(1 << n.saturating_sub(1).min(16))
            .min(self.max);
        if !self.jitter {
            return base;
        }
        let mut r = [0u8; 2];
        let spread = match getrandom::fill(&mut r) {
            Ok(()) => 0.75 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) / 2.0,
            Err(_) => 1.0,
        };
        base.mul_f64(spread)
    }
}

/// What broke, in a few words ("reset", "timed out: no byte moved for 2 s"), if `e` is a
/// broken connection rather than an answer; `None` for anything not worth a retry.
pub fn broken(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return io_broken(io);
        }
        match cause.downcast_ref::<FrameError>() {
            Some(FrameError::Io(io)) => return io_broken(io),
            Some(FrameError::Closed) | Some(FrameError::Truncated) => {
                return Some("closed by the server".into());
            }
            Some(_) => return None,
            None => {}
        }
        let handshake = cause
            .downcast_ref::<HandshakeError>()
            .or_else(|| cause.downcast_ref::<ConnectError>().map(|c| &c.cause));
        match handshake {
            Some(HandshakeError::Io(io)) => return io_broken(io),
            Some(HandshakeError::Timeout(_)) => return Some("timed out in the handshake".into()),
            Some(HandshakeError::Silent) => return Some("closed by the server at once".into()),
            // Said at once on a first connection (a wrong port), retried on a later one.
            Some(HandshakeError::NoBanner) => return Some("sent no banner".into()),
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// Whether `e` is the network not reaching the server at all (a timeout, no route): worth
/// retrying even before a first connection, for a link that is down at the start.
pub fn unreachable(e: &anyhow::Error) -> bool {
    use io::ErrorKind::*;
    let kind_of = |io: &io::Error| {
        matches!(
            io.kind(),
            TimedOut | NetworkUnreachable | HostUnreachable | NetworkDown
        )
    };
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(kind_of)
            || matches!(c.downcast_ref::<FrameError>(), Some(FrameError::Io(io)) if kind_of(io))
            || matches!(
                c.downcast_ref::<HandshakeError>(),
                Some(HandshakeError::Io(io)) if kind_of(io)
            )
            || matches!(
                c.downcast_ref::<ConnectError>().map(|c| &c.cause),
                Some(HandshakeError::Io(io)) if kind_of(io)
            )
    })
}

fn io_broken(e: &io::Error) -> Option<String> {
    use io::ErrorKind::*;
    let what = match e.kind() {
        ConnectionReset => "reset".to_string(),
        ConnectionAborted => "aborted".to_string(),
        BrokenPipe => "closed by the server".to_string(),
        UnexpectedEof => "cut".to_string(),
        TimedOut => e.to_string(),
        ConnectionRefused => "refused".to_string(),
        NetworkUnreachable => "failed: network unreachable".to_string(),
        HostUnreachable => "failed: host unreachable".to_string(),
        NetworkDown => "failed: network down".to_string(),
        NotConnected => "lost: not connected".to_string(),
        _ => return None,
    };
    Some(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_double_and_stay_bounded() {
        let b = Backoff::reconnect();
        for n in 1..=20 {
            let w = b.wait(n);
            let base = (0.5 * f64::from(1u32 << (n - 1).min(8))).min(10.0);
            assert!(w.as_secs_f64() >= base * 0.74 && w.as_secs_f64() <= base * 1.26);
        }
    }

    #[test]
    fn accept_waits_double_to_a_second_and_a_success_starts_again() {
        let mut b = Backoff::accept();
        let waits: Vec<u128> = (0..10).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(5));
    }

    #[test]
    fn broken_connections_are_told_from_answers() {
        let reset = anyhow::Error::new(FrameError::Io(io::ErrorKind::ConnectionReset.into()));
        assert_eq!(broken(&reset).as_deref(), Some("reset"));
        let closed = anyhow::Error::new(FrameError::Closed).context("put");
        assert!(broken(&closed).is_some());
        assert!(broken(&anyhow::anyhow!("big.iso: no such file")).is_none());
        assert!(broken(&anyhow::Error::new(HandshakeError::WrongKey)).is_none());
    }
}
