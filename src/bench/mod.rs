//! `taojie bench`: an echo load generator that verifies every byte that comes back.
//!
//! It opens all connections first, then runs for the given time with `depth` requests in
//! flight on each, and reports verified requests per second, throughput, latency percentiles
//! and its own CPU use, so a reader can tell whether the generator was the bottleneck. It works
//! against any echo server: plain, or upper-casing with `--upper`.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod pattern;
mod report;
mod tcp;
mod udp;

pub use pattern::Pattern;
pub use report::Report;
use report::{ConnTotals, Latencies};

/// What `bench::run` measures: the server, the load and how to report it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Echo server address, HOST:PORT.
    pub addr: String,
    /// Connections (UDP: sockets) opened before the clock starts.
    pub conns: usize,
    /// Requests in flight on each connection.
    pub depth: usize,
    /// Bytes per request (UDP: at least 16, at most 65507).
    pub size: usize,
    /// How long to send requests.
    pub seconds: f64,
    /// Use UDP datagrams instead of TCP.
    pub udp: bool,
    /// Expect answers upper-cased (for servers like the seeds').
    pub upper: bool,
    /// Print the figures as one JSON object.
    pub json: bool,
}

impl Options {
    fn check(&self) -> Result<()> {
        if self.conns == 0 || self.depth == 0 || self.size == 0 {
            bail!("--conns, --depth and --size must be at least 1");
        }
        if !(self.seconds > 0.0 && self.seconds <= 86_400.0) {
            bail!("--seconds must be more than 0 and at most a day");
        }
        if self.udp && !(pattern::SEQ_LEN..=65_507).contains(&self.size) {
            bail!(
                "with --udp, --size must be between {} and 65507",
                pattern::SEQ_LEN
            );
        }
        Ok(())
    }
}

/// Runs the benchmark and prints its figures; exits non-zero, saying why on standard error,
/// if no answer came back or any differed.
pub async fn run(args: Options) -> Result<ExitCode> {
    args.check()?;
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.text());
    }
    Ok(match report.failure() {
        Some(why) => {
            eprintln!("taojie: error: {why}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    })
}

/// Connects, drives the load for `--seconds` and returns the report.
pub async fn measure(args: &Options) -> Result<Report> {
    args.check()?;
    let target = crate::addr::resolve_one(&args.addr).await?;
    let pattern = Arc::new(Pattern::new(args.size, args.upper));
    let latencies = Arc::new(Latencies::new());
    let mut tasks: JoinSet<(ConnTotals, std::io::Result<()>)> = JoinSet::new();

    // All connections are made before the clock starts, so connect time is not load time.
    let sockets = if args.udp {
        Sockets::Udp(bind_all(target, args.conns).await?)
    } else {
        Sockets::Tcp(connect_all(target, args.conns).await?)
    };
    let start = Instant::now();
    let cpu_start = crate::sys::cpu_time();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let (upper, depth) = (args.upper, args.depth);
    match sockets {
        Sockets::Udp(all) => {
            for s in all {
                let (p, l) = (pattern.clone(), latencies.clone());
                tasks.spawn(async move { udp::drive(s, &p, upper, depth, deadline, &l).await });
            }
        }
        Sockets::Tcp(all) => {
            for s in all {
                let (p, l) = (pattern.clone(), latencies.clone());
                tasks.spawn(
                    async move { tcp::drive(s.into_split(), &p, depth, deadline, &l).await },
                );
            }
        }
    }

    let mut totals = ConnTotals::default();
    let mut failed = 0;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let (t, res) = done.context("a connection task failed")?;
        totals += t;
        if let Err(e) = res {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed();
    let cpu = crate::sys::cpu_time().saturating_sub(cpu_start);
    // With nothing verified, the run's one error line says it (Report::failure).
    if let Some(e) = &first_error
        && totals.verified > 0
    {
        tracing::warn!(failed, error = %e, "connections failed during the run");
    }
    let proto = if args.udp { "udp" } else { "tcp" };
    let shape = (args.conns, args.depth, args.size);
    let hist = latencies.snapshot();
    let mut report = Report::build(
        args.addr.clone(),
        proto,
        shape,
        totals,
        failed,
        &hist,
        elapsed,
        cpu,
    );
    report.first_failure = first_error.map(|e| e.to_string());
    Ok(report)
}

enum Sockets {
    Tcp(Vec<TcpStream>),
    Udp(Vec<UdpSocket>),
}

/// Binds `n` UDP sockets connected to `target`.
async fn bind_all(target: std::net::SocketAddr, n: usize) -> Result<Vec<UdpSocket>> {
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let s = UdpSocket::bind(local).await?;
        s.connect(target)
            .await
            .with_context(|| format!("cannot reach {target}"))?;
        sockets.push(s);
    }
    Ok(sockets)
}

/// Opens `n` TCP connections, a few hundred at a time so a deep backlog is not needed.
async fn connect_all(target: std::net::SocketAddr, n: usize) -> Result<Vec<TcpStream>> {
    let mut streams = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    let mut started = 0;
    while streams.len() < n {
        while started < n && pending.len() < 256 {
            pending.spawn(TcpStream::connect(target));
            started += 1;
        }
        let res = pending.join_next().await.expect("tasks pending")?;
        let stream = res.with_context(|| format!("cannot connect to {target}"))?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    Ok(streams)
}
