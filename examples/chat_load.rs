//! Load driver for chat brokers (`taojie serve chat`, `ncat --chat`): many line clients and
//! one writer on loopback. Reports lines delivered per second summed over clients, how many
//! arrived attributed (`<name> ...`), p99 delivery latency at a fixed rate, and the broker's
//! resident memory idle and under load.
//!
//! Usage: chat_load ADDR PID CLIENTS [--throughput SECS] [--rate LINES_PER_SEC] [--latency SECS]
//!
//! Every phase is bounded in time. The writer never runs more than a window of lines ahead of
//! the slowest reader, so a broker is measured at the rate it can sustain for everyone rather
//! than at the rate it can drop clients.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// 41 bytes with the newline: `~T` + 16-digit send time in µs + space + 21 x's.
const LINE_LEN: usize = 41;
/// Lines the writer may be ahead of the slowest reader.
const WINDOW: u64 = 1000;
/// Connections opened at once (ncat's listen backlog is small; overflowing it makes ncat
/// quit with "getpeername ... failed").
const CONNECT_AT_ONCE: usize = 10;
/// Lines per write in the throughput phase.
const BATCH: u64 = 100;

struct Shared {
    epoch: Instant,
    last_rx_us: AtomicU64,
    lines: Vec<AtomicU64>,
    attributed: AtomicU64,
    measure_latency: AtomicBool,
    closed: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn total(&self) -> u64 {
        self.lines.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    fn snapshot(&self) -> Vec<u64> {
        self.lines
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
    /// Lines the slowest reader has received since `base`.
    fn slowest(&self, base: &[u64]) -> u64 {
        self.lines
            .iter()
            .zip(base)
            .map(|(c, b)| c.load(Ordering::Relaxed) - b)
            .min()
            .unwrap_or(0)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) the process has used, in milliseconds.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state; utime and stime
    // are the 12th and 13th of them, in clock ticks of 10 ms.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks * 10
}

fn payload(t_us: u64) -> [u8; LINE_LEN] {
    let mut line = [b'x'; LINE_LEN];
    let head = format!("~T{t_us:016} ");
    line[..head.len()].copy_from_slice(head.as_bytes());
    line[LINE_LEN - 1] = b'\n';
    line
}

async fn reader(mut s: TcpStream, me: usize, sh: Arc<Shared>, buf_len: usize) {
    let mut buf = vec![0u8; buf_len];
    let mut carry: Vec<u8> = Vec::new();
    let mut samples: Vec<u64> = Vec::new();
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => {
                sh.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(n) => n,
        };
        let now = sh.now_us();
        sh.last_rx_us.store(now, Ordering::Relaxed);
        let latency = sh.measure_latency.load(Ordering::Relaxed);
        let chunk = &buf[..n];
        let (mut lines, mut attributed) = (0u64, 0u64);
        let mut start = 0;
        while let Some(p) = chunk[start..].iter().position(|&b| b == b'\n') {
            let end = start + p;
            let line: &[u8] = if carry.is_empty() {
                &chunk[start..end]
            } else {
                carry.extend_from_slice(&chunk[start..end]);
                &carry
            };
            lines += 1;
            if line.first() == Some(&b'<') {
                attributed += 1;
            }
            if latency && let Some(at) = line.windows(2).position(|w| w == b"~T") {
                let digits = line.get(at + 2..at + 18);
                if let Some(t) = digits
                    .and_then(|d| std::str::from_utf8(d).ok())
                    .and_then(|d| d.parse::<u64>().ok())
                {
                    samples.push(now.saturating_sub(t));
                }
            }
            carry.clear();
            start = end + 1;
        }
        if carry.len() < 4096 {
            carry.extend_from_slice(&chunk[start..]);
        }
        sh.lines[me].fetch_add(lines, Ordering::Relaxed);
        sh.attributed.fetch_add(attributed, Ordering::Relaxed);
        if samples.len() >= 256 || (!samples.is_empty() && !latency) {
            let mut h = sh.hist.lock().unwrap();
            for v in samples.drain(..) {
                let _ = h.record(v.max(1));
            }
        }
    }
}

async fn quiesce(sh: &Shared, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let since = sh.now_us() - sh.last_rx_us.load(Ordering::Relaxed);
        if since > quiet.as_micros() as u64 || Instant::now() > deadline {
            return;
        }
    }
}

fn arg(args: &[String], flag: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: chat_load ADDR PID CLIENTS [--throughput SECS] [--rate L/S] [--latency SECS]"
        );
        std::process::exit(2);
    }
    taojie::sys::raise_fd_limit();
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let pid: u32 = args[2].parse().expect("PID");
    let clients: usize = args[3].parse().expect("CLIENTS");
    let throughput_secs = arg(&args, "--throughput", 0.0);
    let fixed_rate = arg(&args, "--rate", 0.0);
    let latency_secs = arg(&args, "--latency", 3.0);
    let buf_len = if clients > 2000 { 4096 } else { 64 * 1024 };

    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        last_rx_us: AtomicU64::new(0),
        lines: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        attributed: AtomicU64::new(0),
        measure_latency: AtomicBool::new(false),
        closed: AtomicU64::new(0),
        hist: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
    });
    let rss_before = rss_kib(pid);
    let t0 = Instant::now();
    let mut connected = 0;
    while connected < clients {
        let n = (clients - connected).min(CONNECT_AT_ONCE);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(TcpStream::connect(addr));
        }
        while let Some(r) = set.join_next().await {
            let s = r.expect("join")?;
            tokio::spawn(reader(s, connected, sh.clone(), buf_len));
            connected += 1;
        }
    }
    let mut writer = TcpStream::connect(addr).await?;
    writer.set_nodelay(true)?;
    quiesce(&sh, Duration::from_secs(1), Duration::from_secs(120)).await;
    let rss_idle = rss_kib(pid);
    println!(
        "clients {clients}: connected in {:.1} s ({} closed by the broker); broker RSS {rss_before} KiB before, {rss_idle} KiB idle = {:.2} KiB per idle client",
        t0.elapsed().as_secs_f64(),
        sh.closed.load(Ordering::Relaxed),
        (rss_idle.saturating_sub(rss_before)) as f64 / clients as f64
    );

    let mut peak_rss = rss_idle;
    let mut rate = fixed_rate;
    if throughput_secs > 0.0 {
        let base = sh.total();
        let bases = sh.snapshot();
        sh.attributed.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(throughput_secs);
        let mut sent: u64 = 0;
        let mut next_rss = start;
        let batch: Vec<u8> = (0..BATCH).flat_map(|_| payload(0)).collect();
        while Instant::now() < end {
            if sent - sh.slowest(&bases).min(sent) < WINDOW {
                writer.write_all(&batch).await?;
                sent += BATCH;
            } else {
                tokio::task::yield_now().await;
            }
            if Instant::now() >= next_rss {
                peak_rss = peak_rss.max(rss_kib(pid));
                next_rss += Duration::from_millis(200);
            }
        }
        // Lines still in flight count if they arrive within a second.
        let want = base + sent * clients as u64;
        let drain = Instant::now() + Duration::from_secs(1);
        while sh.total() < want && Instant::now() < drain {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let got = sh.total() - base;
        let per_sec = got as f64 / secs;
        let attributed = sh.attributed.load(Ordering::Relaxed);
        println!(
            "throughput: {sent} lines sent in {secs:.2} s, {got} delivered of {} = {per_sec:.0} lines/s summed over clients; attributed {:.1}%; broker RSS peak {peak_rss} KiB",
            sent * clients as u64,
            100.0 * attributed as f64 / got.max(1) as f64
        );
        if rate == 0.0 {
            rate = per_sec / clients as f64 / 2.0;
        }
        quiesce(&sh, Duration::from_millis(500), Duration::from_secs(30)).await;
    }

    if rate > 0.0 && latency_secs > 0.0 {
        sh.hist.lock().unwrap().reset();
        sh.measure_latency.store(true, Ordering::Relaxed);
        let cpu_before = cpu_ms(pid);
        let own_before = cpu_ms(std::process::id());
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(latency_secs);
        let mut sent: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut next_rss = start;
        while Instant::now() < end {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            let mut buf = Vec::new();
            while sent < due {
                buf.extend_from_slice(&payload(sh.now_us()));
                sent += 1;
            }
            if !buf.is_empty() {
                writer.write_all(&buf).await?;
            }
            if Instant::now() >= next_rss {
                peak_rss = peak_rss.max(rss_kib(pid));
                next_rss += Duration::from_millis(200);
            }
        }
        quiesce(&sh, Duration::from_millis(500), Duration::from_secs(30)).await;
        let cpu = cpu_ms(pid) - cpu_before;
        let own = cpu_ms(std::process::id()) - own_before;
        sh.measure_latency.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Readers flush their last samples on their next read; a final line nudges them.
        writer.write_all(b"flush\n").await?;
        quiesce(&sh, Duration::from_millis(300), Duration::from_secs(10)).await;
        let h = sh.hist.lock().unwrap();
        println!(
            "latency at {rate:.0} lines/s in ({:.0} delivered/s): {} samples of {} sent, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; broker CPU {:.2} ms per line in ({:.2} µs per delivery; this driver {:.2} µs per delivery); {} clients closed by the broker; broker RSS peak {peak_rss} KiB",
            rate * clients as f64,
            h.len(),
            sent * clients as u64,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            cpu as f64 / sent.max(1) as f64,
            cpu as f64 * 1000.0 / (sent.max(1) * clients as u64) as f64,
            own as f64 * 1000.0 / (sent.max(1) * clients as u64) as f64,
            sh.closed.load(Ordering::Relaxed)
        );
    }
    Ok(())
}
