//! Bench results: latency histogram, totals, and how they are printed (text or JSON).
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies a connection gathers before taking the shared histogram's lock.
const BATCH: usize = 256;

/// The latency histogram all connections record into, in nanoseconds.
pub struct Latencies {
    shared: Mutex<Histogram<u64>>,
}

impl Latencies {
    /// An empty histogram covering 1 ns to 100 s at 3 significant digits.
    pub fn new() -> Self {
        let h = Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("static bounds");
        Latencies {
            shared: Mutex::new(h),
        }
    }

    /// Adds a batch of samples (nanoseconds).
    pub fn add(&self, samples: &mut Vec<u64>) {
        let mut h = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        for &s in samples.iter() {
            let _ = h.record(s.max(1));
        }
        samples.clear();
    }

    /// The histogram gathered so far.
    pub fn snapshot(&self) -> Histogram<u64> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// One connection's latency samples, flushed to the shared histogram in batches.
pub struct Recorder<'a> {
    into: &'a Latencies,
    batch: Vec<u64>,
}

impl<'a> Recorder<'a> {
    /// A recorder feeding `into`.
    pub fn new(into: &'a Latencies) -> Self {
        Recorder {
            into,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// Records one request's round trip.
    pub fn record(&mut self, rtt: Duration) {
        self.batch.push(rtt.as_nanos() as u64);
        if self.batch.len() == BATCH {
            self.into.add(&mut self.batch);
        }
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.into.add(&mut self.batch);
    }
}

/// What one connection did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnTotals {
    /// Answers received and verified.
    pub verified: u64,
    /// Answers that differed from what was expected.
    pub mismatched: u64,
    /// Requests that got no answer (UDP loss, or a server that closed early).
    pub lost: u64,
}

impl std::ops::AddAssign for ConnTotals {
    fn add_assign(&mut self, o: Self) {
        self.verified += o.verified;
        self.mismatched += o.mismatched;
        self.lost += o.lost;
    }
}

/// The figures a bench run reports; also its `--json` form.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Target address.
    pub addr: String,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Connections (or UDP sockets).
    pub conns: usize,
    /// Requests in flight per connection.
    pub depth: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Measured wall time in seconds.
    pub seconds: f64,
    /// Verified answers.
    pub requests: u64,
    /// Verified answers per second.
    pub requests_per_sec: f64,
    /// Payload megabytes (10^6) per second, each way.
    pub mb_per_sec: f64,
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th percentile round trip, µs.
    pub p99_us: f64,
    /// 99.9th percentile round trip, µs.
    pub p999_us: f64,
    /// Slowest round trip, µs.
    pub max_us: f64,
    /// Answers that failed verification.
    pub errors: u64,
    /// Requests never answered.
    pub lost: u64,
    /// Connections that failed (refused, reset, closed early).
    pub failed_conns: usize,
    /// The bench process's own CPU use: (user + system) / wall × 100; 200 = both cores.
    pub cpu_percent: f64,
    /// Why the first connection that failed did, when one did.
    #[serde(skip)]
    pub first_failure: Option<String>,
}

impl Report {
    /// Fills the rates and percentiles from totals, the histogram and the elapsed time.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        addr: String,
        proto: &'static str,
        (conns, depth, size): (usize, usize, usize),
        totals: ConnTotals,
        failed_conns: usize,
        hist: &Histogram<u64>,
        elapsed: Duration,
        cpu: Duration,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        Report {
            addr,
            proto,
            conns,
            depth,
            size,
            seconds: secs,
            requests: totals.verified,
            requests_per_sec: totals.verified as f64 / secs,
            mb_per_sec: (totals.verified * size as u64) as f64 / secs / 1e6,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: hist.max() as f64 / 1000.0,
            errors: totals.mismatched,
            lost: totals.lost,
            failed_conns,
            cpu_percent: cpu.as_secs_f64() / secs * 100.0,
            first_failure: None,
        }
    }

    /// Why the run failed, in one line for standard error: no answer, or answers that were
    /// not what was sent. `None` when every answer came back verified.
    pub fn failure(&self) -> Option<String> {
        let (addr, proto) = (&self.addr, self.proto);
        match (self.errors, self.requests) {
            (0, 0) => {
                let first = match &self.first_failure {
                    Some(why) => format!(", the first: {why}"),
                    None => String::new(),
                };
                Some(format!(
                    "{addr} ({proto}) did not echo: no answer came back in {:.1} s ({} requests \
                     unanswered, {} connections failed{first}); is it an echo server?",
                    self.seconds, self.lost, self.failed_conns
                ))
            }
            (0, _) => None,
            (bad, _) => Some(format!(
                "{addr} ({proto}) did not echo what was sent: {bad} answers differed"
            )),
        }
    }

    /// The human-readable summary.
    pub fn text(&self) -> String {
        let verdict = match (self.errors, self.requests) {
            (0, 0) => "NO answer came back: the server did not echo".to_string(),
            (0, n) => format!("all {n} answers byte for byte"),
            (bad, _) => format!("{bad} answers DIFFERED from what was sent"),
        };
        format!(
            "taojie bench {addr} ({proto}): {conns} conns x depth {depth}, {size}-byte messages, {secs:.1} s\n\
             \x20 requests   {req} ({rps:.0} req/s, {mbps:.1} MB/s each way)\n\
             \x20 latency    p50 {p50:.0} us   p99 {p99:.0} us   p99.9 {p999:.0} us   max {max:.0} us\n\
             \x20 verified   {verdict}; {lost} unanswered; {failed} connections failed\n\
             \x20 bench cpu  {cpu:.0}% (100% = one core)",
            addr = self.addr,
            proto = self.proto,
            conns = self.conns,
            depth = self.depth,
            size = self.size,
            secs = self.seconds,
            req = self.requests,
            rps = self.requests_per_sec,
            mbps = self.mb_per_sec,
            p50 = self.p50_us,
            p99 = self.p99_us,
            p999 = self.p999_us,
            max = self.max_us,
            lost = self.lost,
            failed = self.failed_conns,
            cpu = self.cpu_percent,
        )
    }
}
