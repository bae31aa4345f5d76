//! The receiving side of the load driver: plain threads, each running one mio poll loop over
//! its share of the clients, so the instrument costs little more per delivery than the read
//! system call itself and leaves the cores to the broker it measures.
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Poll, Token};

/// State the readers update and the driver's main thread reads.
pub struct Shared {
    pub epoch: Instant,
    pub last_rx_us: AtomicU64,
    /// Lines received per client (written by its one reader only).
    pub lines: Vec<AtomicU64>,
    pub attributed: AtomicU64,
    pub measure_latency: AtomicBool,
    pub closed: AtomicU64,
    /// One histogram per reader thread, so recording never waits on another reader.
    pub hists: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    pub fn new(clients: usize, readers: usize) -> Self {
        Shared {
            epoch: Instant::now(),
            last_rx_us: AtomicU64::new(0),
            lines: (0..clients).map(|_| AtomicU64::new(0)).collect(),
            attributed: AtomicU64::new(0),
            measure_latency: AtomicBool::new(false),
            closed: AtomicU64::new(0),
            hists: (0..readers)
                .map(|_| Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()))
                .collect(),
        }
    }
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    pub fn total(&self) -> u64 {
        self.lines.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    pub fn snapshot(&self) -> Vec<u64> {
        self.lines
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
    /// Lines the slowest member of each room has received since `base` (client i is in room
    /// i % rooms).
    pub fn slowest(&self, base: &[u64], rooms: usize) -> Vec<u64> {
        let mut min = vec![u64::MAX; rooms];
        for (i, (c, b)) in self.lines.iter().zip(base).enumerate() {
            let got = c.load(Ordering::Relaxed) - b;
            let m = &mut min[i % rooms];
            *m = (*m).min(got);
        }
        min.iter()
            .map(|&m| if m == u64::MAX { 0 } else { m })
            .collect()
    }
    pub fn reset_latency(&self) {
        for h in &self.hists {
            h.lock().unwrap().reset();
        }
    }
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for h in &self.hists {
            let _ = all.add(&*h.lock().unwrap());
        }
        all
    }
}

struct Client {
    /// Shared with the main thread, which sends from it when every member is a sender.
    stream: Arc<TcpStream>,
    idx: usize,
    /// The start of a line split across reads.
    carry: Vec<u8>,
}

/// Lines, attributed lines and latency samples found in one read.
#[derive(Default)]
struct Tally {
    lines: u64,
    attributed: u64,
}

/// Runs reader `me` of `readers` until the process exits. The main thread registers each
/// client (nonblocking, by its descriptor) with this reader's registry under `Token(idx)` and
/// then sends it down `rx`.
pub fn run(
    me: usize,
    readers: usize,
    mut poll: Poll,
    rx: Receiver<(usize, Arc<TcpStream>)>,
    sh: Arc<Shared>,
) {
    let mut slots: Vec<Option<Client>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    // One buffer for all of this reader's clients: a 41-byte line needs no more per client.
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples: Vec<u64> = Vec::with_capacity(4096);
    let place = |slots: &mut Vec<Option<Client>>, (idx, stream): (usize, Arc<TcpStream>)| {
        let local = idx / readers;
        if slots.len() <= local {
            slots.resize_with(local + 1, || None);
        }
        slots[local] = Some(Client {
            stream,
            idx,
            carry: Vec::new(),
        });
    };
    loop {
        if poll
            .poll(&mut events, Some(Duration::from_millis(100)))
            .is_err()
        {
            continue;
        }
        while let Ok(c) = rx.try_recv() {
            place(&mut slots, c);
        }
        if events.is_empty() {
            continue;
        }
        let latency = sh.measure_latency.load(Ordering::Relaxed);
        let mut attributed = 0;
        let mut now = 0;
        for ev in events.iter() {
            let Token(idx) = ev.token();
            let local = idx / readers;
            // Registered but not yet handed over: the hand-over follows at once.
            while slots.get(local).is_none_or(|s| s.is_none()) {
                match rx.recv_timeout(Duration::from_secs(5)) {
                    Ok(c) => place(&mut slots, c),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let Some(Some(c)) = slots.get_mut(local) else {
                continue;
            };
            let mut lines = 0;
            let mut gone = false;
            loop {
                match (&*c.stream).read(&mut buf) {
                    Ok(0) => {
                        gone = true;
                        break;
                    }
                    Ok(n) => {
                        now = sh.now_us();
                        let t = scan(
                            &buf[..n],
                            &mut c.carry,
                            latency.then_some(now),
                            &mut samples,
                        );
                        lines += t.lines;
                        attributed += t.attributed;
                        // A short read emptied the socket's queue; data arriving later raises a
                        // new edge, so the extra read that would only say WouldBlock is saved.
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        gone = true;
                        break;
                    }
                }
            }
            if lines > 0 {
                let counter = &sh.lines[c.idx];
                // Only this thread writes the counter: no locked add needed.
                counter.store(counter.load(Ordering::Relaxed) + lines, Ordering::Relaxed);
            }
            if gone {
                let _ = poll
                    .registry()
                    .deregister(&mut SourceFd(&c.stream.as_raw_fd()));
                slots[local] = None;
                sh.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if now > 0 {
            sh.last_rx_us.fetch_max(now, Ordering::Relaxed);
        }
        if attributed > 0 {
            sh.attributed.fetch_add(attributed, Ordering::Relaxed);
        }
        if !samples.is_empty() {
            let mut h = sh.hists[me].lock().unwrap();
            for v in samples.drain(..) {
                let _ = h.record(v.max(1));
            }
        }
    }
}

/// Counts the complete lines in `chunk` (with what `carry` holds from the previous read) and,
/// when `now` is given, takes a latency sample from every line carrying a `~T` send time.
/// Other lines (welcomes, join notices) are counted but never sampled.
fn scan(chunk: &[u8], carry: &mut Vec<u8>, now: Option<u64>, samples: &mut Vec<u64>) -> Tally {
    let mut t = Tally::default();
    let mut start = 0;
    if !carry.is_empty() {
        // The end of a line begun in the previous read.
        let Some(p) = chunk.iter().position(|&b| b == b'\n') else {
            if carry.len() < 4096 {
                carry.extend_from_slice(chunk);
            }
            return t;
        };
        carry.extend_from_slice(&chunk[..p]);
        let sent = carry
            .windows(2)
            .position(|w| w == b"~T")
            .and_then(|at| digits(&carry[at..]));
        t.count(carry, now.zip(sent), samples);
        carry.clear();
        start = p + 1;
    }
    while start < chunk.len() {
        let rest = &chunk[start..];
        let Some((end, sent)) = next_line(rest) else {
            if rest.len() < 4096 {
                carry.extend_from_slice(rest);
            }
            break;
        };
        t.count(&rest[..end], now.zip(sent), samples);
        start += end + 1;
    }
    t
}

impl Tally {
    fn count(&mut self, line: &[u8], stamps: Option<(u64, u64)>, samples: &mut Vec<u64>) {
        self.lines += 1;
        if line.first() == Some(&b'<') {
            self.attributed += 1;
        }
        if let Some((now, sent)) = stamps {
            samples.push(now.saturating_sub(sent));
        }
    }
}

/// Where the first line of `rest` ends (its newline) and its send time if it is one of the
/// driver's lines, or None when `rest` holds no complete line. The reader spends most of its
/// own time here, so the driver's lines take a short cut: `~` within the first 64 bytes (after
/// the broker's `<name> `), then `T`, 16 digits, a space and the newline exactly where a
/// LINE_LEN-byte payload puts it, without looking at the bytes in between.
fn next_line(rest: &[u8]) -> Option<(usize, Option<u64>)> {
    let head = &rest[..rest.len().min(64)];
    if let Some(at) = head.iter().position(|&b| b == b'~' || b == b'\n') {
        if rest[at] == b'\n' {
            return Some((at, None));
        }
        let end = at + super::LINE_LEN - 1;
        if rest.get(end) == Some(&b'\n')
            && rest.get(at + 18) == Some(&b' ')
            && let Some(sent) = digits(&rest[at..])
        {
            return Some((end, Some(sent)));
        }
    }
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..end];
    let sent = line
        .windows(2)
        .position(|w| w == b"~T")
        .and_then(|at| digits(&line[at..]));
    Some((end, sent))
}

/// The send time in µs from `~T` followed by 16 digits at the start of `s`.
fn digits(s: &[u8]) -> Option<u64> {
    if s.get(..2) != Some(b"~T") {
        return None;
    }
    s.get(2..18)?.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(t: u64) -> Vec<u8> {
        let mut l = format!("~T{t:016} ").into_bytes();
        l.resize(super::super::LINE_LEN - 1, b'x');
        l.push(b'\n');
        l
    }

    #[test]
    fn counts_and_samples_across_splits() {
        let mut all = b"*** welcome, you are user1 in lobby\n".to_vec();
        all.extend(b"<user2> ".iter().chain(&payload(100)));
        all.extend(b"*** user3 joined r1 ~T\n");
        all.extend(b"<u> ".iter().chain(&payload(250)));
        all.extend(b"<user5> ~T12 short\n");
        for cut in 0..all.len() {
            let (mut carry, mut samples) = (Vec::new(), Vec::new());
            let a = scan(&all[..cut], &mut carry, Some(1000), &mut samples);
            let b = scan(&all[cut..], &mut carry, Some(1000), &mut samples);
            assert_eq!(a.lines + b.lines, 5, "cut at {cut}");
            assert_eq!(a.attributed + b.attributed, 3, "cut at {cut}");
            assert_eq!(samples, [900, 750], "cut at {cut}");
            assert!(carry.is_empty());
        }
    }
}
