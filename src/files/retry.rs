//! `--retries` and `--timeout` of `put` and `get`: which failures are worth another
//! connection, how long to wait before it, and the one line that says so.
//!
//! A broken connection (reset, cut, timed out, unreachable) is retried; an answer from the
//! server (wrong key, no such file, no space, refused) is not, because asking again gets the
//! same answer. Before a first connection has worked, only a network that does not reach the
//! server (a timeout, no route) is retried: a refusal or a reset then means a wrong address
//! or a server that will not talk to us, and is said at once. Each retry resumes from what the receiver already verified (see
//! [`partial`](super::partial)), so a retry costs at most one checkpoint of bytes again.
use std::io;
use std::time::Duration;

use clap::Args;

use super::progress::human;
use super::stall::secs;
use crate::framing::FrameError;
use crate::secure::HandshakeError;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Wait before the first retry; each later one waits twice as long (plus jitter).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Flags for surviving a bad network.
#[derive(Args, Debug, Clone)]
pub struct RetryOpts {
    /// Reconnect and resume up to N times per file when the connection breaks (reset, cut,
    /// timed out); 0 never retries. Waits 0.5 s, 1 s, 2 s... (at most 10 s, with jitter)
    /// between attempts: the default 5 rides out about 15 s of outage. Refusals (wrong key,
    /// no such file, no space) are never retried, nor is a first connection that is refused
    /// or reset (a wrong address); one that times out or finds no route is.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Count a connection as broken (and retry) once no byte has moved on it for SECS: a link
    /// that went down, a dead peer; also bounds connecting
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = crate::flags::positive_secs)]
    pub timeout: f64,
}

impl Default for RetryOpts {
    fn default() -> Self {
        RetryOpts {
            retries: 5,
            timeout: 60.0,
        }
    }
}

impl RetryOpts {
    /// The stall limit as a duration (at least 0.1 s).
    pub fn stall(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.clamp(0.1, 86_400.0))
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
        match cause.downcast_ref::<HandshakeError>() {
            Some(HandshakeError::Io(io)) => return io_broken(io),
            Some(HandshakeError::Timeout(_)) => return Some("timed out in the handshake".into()),
            Some(HandshakeError::Silent) => return Some("closed by the server at once".into()),
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// Whether `e` is the network not reaching the server at all (a timeout, no route): worth
/// retrying even before a first connection, for a link that is down at the start.
fn unreachable(e: &anyhow::Error) -> bool {
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

/// The wait before retry number `n` (from 1): doubling from 0.5 s up to 10 s, then a random
/// 0.75-1.25 of that so that many clients cut at once do not come back at once.
pub fn backoff(n: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << n.saturating_sub(1).min(8));
    let base = base.min(MAX_BACKOFF);
    let mut r = [0u8; 2];
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => 0.75 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) / 2.0,
        Err(_) => 1.0,
    };
    base.mul_f64(jitter)
}

/// "connection to ADDR reset during NAME at 7.50 MiB of 16.00 MiB": what broke and where,
/// with the file under way and how far it had got (position, size), if any.
pub fn describe(addr: &str, what: &str, file: Option<(&str, u64, u64)>) -> String {
    match file {
        Some((name, pos, size)) => format!(
            "connection to {addr} {what} during {} at {} of {}",
            super::names::escape(name),
            human(pos),
            human(size)
        ),
        None => format!("connection to {addr} {what}"),
    }
}

/// Prints the retry line: "connection to ADDR reset ...; retry 2/5 in 1.2 s".
pub fn announce(line: &str, n: u32, of: u32, wait: Duration) {
    eprintln!(
        "taojie: {line}; retry {n}/{of} in {} s",
        secs(Duration::from_millis(wait.as_millis() as u64 / 100 * 100))
    );
}

/// One command's retries: counts them per file and does the waiting.
pub struct Retrier<'a> {
    addr: &'a str,
    opts: &'a RetryOpts,
    used: u32,
    total: u32,
    connected: bool,
}

impl<'a> Retrier<'a> {
    /// Retries of `opts` for a command talking to `addr`.
    pub fn new(addr: &'a str, opts: &'a RetryOpts) -> Self {
        Retrier {
            addr,
            opts,
            used: 0,
            total: 0,
            connected: false,
        }
    }

    /// A connection was made: from now on a refused or reset connection means a server
    /// restarting or a network in trouble, not a wrong address or a server that never
    /// answers this client, and is retried too.
    pub fn connected(&mut self) {
        self.connected = true;
    }

    /// A file got through: the next one has the whole budget again.
    pub fn progressed(&mut self) {
        self.used = 0;
    }

    /// Retries used on the current file.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Retries made in all.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// After `e` ended an attempt: `Ok` (having said so and waited) when another is worth
    /// making, else the error to end the command with, saying once what broke and where.
    pub async fn again(
        &mut self,
        e: anyhow::Error,
        file: Option<(&str, u64, u64)>,
    ) -> anyhow::Result<()> {
        match broken(&e) {
            Some(what) if self.connected || unreachable(&e) => self.wait(&what, file).await,
            _ => Err(e),
        }
    }

    /// Says that `what` happened to the connection (during `file`) and waits before the next
    /// attempt, or gives up when the budget is spent.
    pub async fn wait(&mut self, what: &str, file: Option<(&str, u64, u64)>) -> anyhow::Result<()> {
        let line = describe(self.addr, what, file);
        if self.used >= self.opts.retries {
            return Err(match self.opts.retries {
                0 => anyhow::anyhow!("{line}"),
                n => anyhow::anyhow!("{line}; gave up after {n} retries"),
            });
        }
        self.used += 1;
        self.total += 1;
        let pause = backoff(self.used);
        announce(&line, self.used, self.opts.retries, pause);
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_stay_bounded() {
        for n in 1..=20 {
            let w = backoff(n);
            let base = (0.5 * f64::from(1u32 << (n - 1).min(8))).min(10.0);
            assert!(w.as_secs_f64() >= base * 0.74 && w.as_secs_f64() <= base * 1.26);
        }
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
