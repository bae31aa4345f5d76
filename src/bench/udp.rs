//! One UDP socket of the load generator: `depth` datagrams in flight, each answer matched to
//! its request by the sequence number it carries; silence past a timeout counts as loss.
use std::collections::HashMap;
use std::io;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until};

use super::pattern::Pattern;
use super::report::{ConnTotals, Latencies, Recorder};

/// How long an unanswered datagram waits before it counts as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(500);

/// Drives one connected UDP socket until `deadline`, then waits out the answers in flight.
pub async fn drive(
    socket: UdpSocket,
    pattern: &Pattern,
    upper: bool,
    depth: usize,
    deadline: Instant,
    latencies: &Latencies,
) -> (ConnTotals, io::Result<()>) {
    let mut totals = ConnTotals::default();
    let res = run(
        &socket,
        pattern,
        upper,
        depth,
        deadline,
        latencies,
        &mut totals,
    )
    .await;
    (totals, res)
}

async fn run(
    socket: &UdpSocket,
    pattern: &Pattern,
    upper: bool,
    depth: usize,
    deadline: Instant,
    latencies: &Latencies,
    totals: &mut ConnTotals,
) -> io::Result<()> {
    let mut recorder = Recorder::new(latencies);
    let mut in_flight: HashMap<u64, Instant> = HashMap::with_capacity(depth);
    let mut next = 0u64;
    let mut out = Vec::with_capacity(pattern.size());
    let mut buf = vec![0u8; pattern.size().max(65_536) + 1];
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        while now < deadline && in_flight.len() < depth {
            pattern.datagram(next, &mut out);
            socket.send(&out).await?;
            in_flight.insert(next, Instant::now());
            next += 1;
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        tokio::select! {
            got = socket.recv(&mut buf) => {
                let n = got?;
                match pattern.check_datagram(&buf[..n], upper) {
                    Some(seq) => {
                        if let Some(sent) = in_flight.remove(&seq) {
                            recorder.record(sent.elapsed());
                            totals.verified += 1;
                            last_progress = Instant::now();
                        }
                    }
                    None => totals.mismatched += 1,
                }
            }
            _ = sleep_until(last_progress + LOSS_TIMEOUT) => {
                totals.lost += in_flight.len() as u64;
                in_flight.clear();
                last_progress = Instant::now();
            }
        }
    }
}
