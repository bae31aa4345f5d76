//! The receiving side of the load driver: plain threads, each running one mio poll loop over
//! its share of the clients, so the instrument costs little more per delivery than the read
//! system call itself and leaves the cores to the broker it measures.
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
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
    stream: TcpStream,
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
/// client with this reader's registry under `Token(idx)` and then sends it down `rx`.
pub fn run(
    me: usize,
    readers: usize,
    mut poll: Poll,
    rx: Receiver<(usize, TcpStream)>,
    sh: Arc<Shared>,
) {
    let mut slots: Vec<Option<Client>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    // One buffer for all of this reader's clients: a 41-byte line needs no more per client.
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples: Vec<u64> = Vec::with_capacity(4096);
    let place = |slots: &mut Vec<Option<Client>>, (idx, stream): (usize, TcpStream)| {
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
                match c.stream.read(&mut buf) {
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
                let _ = poll.registry().deregister(&mut c.stream);
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
    while let Some(p) = chunk[start..].iter().position(|&b| b == b'\n') {
        let end = start + p;
        let line: &[u8] = if carry.is_empty() {
            &chunk[start..end]
        } else {
            carry.extend_from_slice(&chunk[start..end]);
            carry
        };
        t.lines += 1;
        if line.first() == Some(&b'<') {
            t.attributed += 1;
        }
        if let Some(now) = now
            && let Some(sent) = send_time(line)
        {
            samples.push(now.saturating_sub(sent));
        }
        carry.clear();
        start = end + 1;
    }
    if carry.len() < 4096 {
        carry.extend_from_slice(&chunk[start..]);
    }
    t
}

/// The send time in µs from `~T` followed by 16 digits, anywhere in the line.
fn send_time(line: &[u8]) -> Option<u64> {
    let at = line.windows(2).position(|w| w == b"~T")?;
    let digits = line.get(at + 2..at + 18)?;
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}
