//! Every member a sender (`--all-send`): the room's lines come from its members in turn,
//! evenly spread, instead of from one writer connection. At R lines/s into a room of N, member
//! i sends its k-th line at (k·N + i) / R seconds: one line every N / R seconds each (R = N is
//! "one line each per second"), a steady R lines/s in all.
use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reader::Shared;
use super::{TICK, payload};

/// Longest the driver goes on trying to hand lines to sockets the broker stopped reading.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// What the members sent.
pub struct Sent {
    /// Lines made (each stamped when made; a line a socket did not take at once is sent,
    /// stamp unchanged, as soon as the socket takes it).
    pub lines: u64,
    /// Of those, lines some socket still had not taken when the phase ended.
    pub stuck: u64,
}

/// Sends `rate` lines a second, member after member, for `secs`; calls `tick` at every wake.
pub fn send(
    members: &[Arc<TcpStream>],
    sh: &Shared,
    rate: f64,
    secs: f64,
    tick: &mut dyn FnMut(),
) -> Sent {
    let n = members.len() as u64;
    // Members whose socket did not take everything: their unsent bytes, in order.
    let mut owed: Vec<Vec<u8>> = vec![Vec::new(); members.len()];
    let mut waiting: VecDeque<usize> = VecDeque::new();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut made = 0u64;
    let mut last_wake = start;
    while Instant::now() < end {
        let next = start + Duration::from_secs_f64((made + 1) as f64 / rate);
        let wake = next.min(end).max(last_wake + TICK);
        if let Some(d) = wake.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        last_wake = Instant::now();
        retry(members, &mut owed, &mut waiting);
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while made < due {
            let i = (made % n) as usize;
            let line = payload(sh.now_us());
            made += 1;
            if !owed[i].is_empty() {
                owed[i].extend_from_slice(&line);
                continue;
            }
            let took = write_some(&members[i], &line);
            if took < line.len() {
                owed[i].extend_from_slice(&line[took..]);
                waiting.push_back(i);
            }
        }
        tick();
    }
    let limit = Instant::now() + FLUSH_LIMIT;
    while !waiting.is_empty() && Instant::now() < limit {
        std::thread::sleep(TICK);
        retry(members, &mut owed, &mut waiting);
    }
    let stuck = owed
        .iter()
        .map(|o| o.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum();
    Sent { lines: made, stuck }
}

/// Offers each waiting member's owed bytes to its socket again.
fn retry(members: &[Arc<TcpStream>], owed: &mut [Vec<u8>], waiting: &mut VecDeque<usize>) {
    for _ in 0..waiting.len() {
        let Some(i) = waiting.pop_front() else {
            break;
        };
        let took = write_some(&members[i], &owed[i]);
        owed[i].drain(..took);
        if !owed[i].is_empty() {
            waiting.push_back(i);
        }
    }
}

/// Writes what the nonblocking socket takes now; 0 when it takes nothing or has failed (a
/// member the broker dropped sends nothing more).
fn write_some(s: &TcpStream, bytes: &[u8]) -> usize {
    loop {
        match (&*s).write(bytes) {
            Ok(n) => return n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return 0,
            Err(_) => return 0,
        }
    }
}
