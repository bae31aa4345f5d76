//! `--retries` and `--timeout` of `put` and `get`: counting the attempts, and the one line
//! that says what broke; which failures are worth another connection, and how long to wait
//! before it, is [`crate::retry`]'s policy.
//!
//! A broken connection (reset, cut, timed out, unreachable) is retried; an answer from the
//! server (wrong key, no such file, no space, refused) is not, because asking again gets the
//! same answer. Before a first connection has worked, only a network that does not reach the
//! server (a timeout, no route) is retried: a refusal or a reset then means a wrong address
//! or a server that will not talk to us, and is said at once. Each retry resumes from what the receiver already verified (see
//! [`partial`](super::partial)), so a retry costs at most one checkpoint of bytes again.
use std::time::Duration;

use super::progress::human;
use super::stall::secs;
use crate::retry::{Backoff, broken, unreachable};

/// Surviving a bad network: how many times to reconnect and resume, and when a silent
/// connection counts as broken.
#[derive(Debug, Clone)]
pub struct RetryOpts {
    /// Reconnect and resume up to this many times per file when the connection breaks.
    pub retries: u32,
    /// Seconds without a byte moving after which a connection counts as broken (also bounds
    /// connecting).
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
    backoff: Backoff,
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
            backoff: Backoff::reconnect(),
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
        let pause = self.backoff.wait(self.used);
        announce(&line, self.used, self.opts.retries, pause);
        tokio::time::sleep(pause).await;
        Ok(())
    }
}
