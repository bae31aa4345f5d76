//! Load driver for chat brokers (`taojie serve chat`, `ncat --chat`, bench/peers/chat_epoll.c):
//! many line clients and one writer per room on loopback. Reports lines delivered per second
//! summed over clients, how many arrived attributed (`<name> ...`), p99 delivery latency at a
//! fixed rate, the broker's and this driver's CPU per delivery, and the broker's resident
//! memory idle and under load.
//!
//! Usage: chat_load ADDR PID CLIENTS [--throughput SECS] [--rate LINES_PER_SEC_PER_ROOM]
//!        [--latency SECS] [--readers N] [--rooms R] [--all-send]
//!
//! With `--all-send` (one room, latency phase only) there is no writer: the members send the
//! room's `--rate` lines a second themselves, in turn (see crowd.rs), and each line is owed to
//! every member but its sender.
//!
//! Brokers joined through NATS: ADDR and PID may be comma-separated lists (PIDs of every
//! process to charge the CPU to, NATS included). Room r's writer then joins broker r mod N
//! and the room's clients are spread over the other brokers, so every delivery measured has
//! crossed from one broker to another; CPU and RSS are summed over the PIDs.
//!
//! Every phase is bounded in time. The writer never runs more than a window of lines ahead of
//! the slowest reader of its room, so a broker is measured at the rate it can sustain for
//! everyone rather than at the rate it can drop clients. The readers are plain threads with a
//! mio poll loop each (see reader.rs), so that the instrument takes little of the two cores
//! the broker is measured on.
mod crowd;
mod reader;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use reader::Shared;
use std::os::fd::AsRawFd;

/// 41 bytes with the newline: `~T` + 16-digit send time in µs + space + 21 x's.
const LINE_LEN: usize = 41;
/// Lines a writer may be ahead of the slowest reader of its room.
const WINDOW: u64 = 1000;
/// Lines per write in the throughput phase.
const BATCH: u64 = 100;
/// Shortest pause between two writes of the latency phase.
const TICK: Duration = Duration::from_millis(1);
/// Longest a write to the broker may block before the phase gives up.
const WRITE_LIMIT: Duration = Duration::from_secs(10);

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

/// CPU time the process has used, in milliseconds: the on-CPU nanoseconds the scheduler keeps
/// per thread (/proc/PID/task/*/schedstat), which resolve the few milliseconds a short phase
/// costs; falls back to utime + stime in 10 ms ticks where schedstat is missing. Threads that
/// exit during a phase drop out of the sum, which the broker and this driver do not do.
fn cpu_ms(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    let ns: Option<u64> = tasks.ok().and_then(|dir| {
        dir.map(|t| {
            let t = t.ok()?;
            let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
    });
    if let Some(ns) = ns {
        return ns as f64 / 1e6;
    }
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
    ticks as f64 * 10.0
}

fn payload(t_us: u64) -> [u8; LINE_LEN] {
    let mut line = [b'x'; LINE_LEN];
    let head = format!("~T{t_us:016} ");
    line[..head.len()].copy_from_slice(head.as_bytes());
    line[LINE_LEN - 1] = b'\n';
    line
}

/// Waits until no line has arrived for `quiet`, or `limit` has passed.
fn quiesce(sh: &Shared, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        std::thread::sleep(Duration::from_millis(100));
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

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, Duration::from_secs(10))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: chat_load ADDR PID CLIENTS [--throughput SECS] [--rate L/S PER ROOM] [--latency SECS] [--readers N] [--rooms R] [--all-send]"
        );
        std::process::exit(2);
    }
    taojie::sys::raise_fd_limit();
    let addrs: Vec<SocketAddr> = args[1]
        .split(',')
        .map(|a| a.parse().expect("ADDR"))
        .collect();
    let pids: Vec<u32> = args[2]
        .split(',')
        .map(|p| p.parse().expect("PID"))
        .collect();
    let rss_kib = |_: u32| pids.iter().map(|&p| rss_kib(p)).sum::<u64>();
    let cpu_all = || pids.iter().map(|&p| cpu_ms(p)).sum::<f64>();
    let pid = pids[0];
    // Room r's writer's broker, and the broker of client i (of room i % rooms): with several
    // brokers, never the room's writer's.
    let writer_at = |room: usize| addrs[room % addrs.len()];
    let client_at = |i: usize, rooms: usize| {
        if addrs.len() == 1 {
            return addrs[0];
        }
        let w = (i % rooms) % addrs.len();
        let others: Vec<usize> = (0..addrs.len()).filter(|&b| b != w).collect();
        addrs[others[(i / rooms) % others.len()]]
    };
    let clients: usize = args[3].parse().expect("CLIENTS");
    let throughput_secs = arg(&args, "--throughput", 0.0);
    let fixed_rate = arg(&args, "--rate", 0.0);
    let latency_secs = arg(&args, "--latency", 3.0);
    let readers = (arg(&args, "--readers", 1.0) as usize).max(1);
    let rooms = (arg(&args, "--rooms", 1.0) as usize).clamp(1, clients.max(1));
    let all_send = args.iter().any(|a| a == "--all-send");
    if all_send && (rooms > 1 || throughput_secs > 0.0 || fixed_rate <= 0.0 || clients < 2) {
        eprintln!(
            "chat_load: --all-send takes one room, --rate and two clients or more, and no --throughput"
        );
        std::process::exit(2);
    }

    let sh = Arc::new(Shared::new(clients, readers));
    let mut registries = Vec::new();
    let mut handoff = Vec::new();
    for me in 0..readers {
        let poll = Poll::new()?;
        registries.push(poll.registry().try_clone()?);
        let (tx, rx) = std::sync::mpsc::channel();
        handoff.push(tx);
        let sh = sh.clone();
        std::thread::Builder::new()
            .name(format!("reader{me}"))
            .spawn(move || reader::run(me, readers, poll, rx, sh))?;
    }

    let rss_before = rss_kib(pid);
    let t0 = Instant::now();
    // One connection at a time, each complete before the next: ncat's listen backlog is small
    // and overflowing it makes ncat quit with "getpeername ... failed".
    let mut members = Vec::new();
    for i in 0..clients {
        let mut s = connect(client_at(i, rooms))?;
        if rooms > 1 {
            s.set_write_timeout(Some(WRITE_LIMIT))?;
            s.write_all(format!("/join r{}\n", i % rooms).as_bytes())?;
        }
        s.set_nonblocking(true)?;
        if all_send {
            s.set_nodelay(true)?;
        }
        let s = Arc::new(s);
        let r = i % readers;
        registries[r].register(&mut SourceFd(&s.as_raw_fd()), Token(i), Interest::READABLE)?;
        if all_send {
            members.push(s.clone());
        }
        handoff[r].send((i, s)).expect("reader thread");
    }
    let mut writers = Vec::new();
    // With --all-send the members are the writers.
    for room in 0..rooms * usize::from(!all_send) {
        let mut w = connect(writer_at(room))?;
        w.set_nodelay(true)?;
        w.set_write_timeout(Some(WRITE_LIMIT))?;
        if rooms > 1 {
            w.write_all(format!("/join r{room}\n").as_bytes())?;
        }
        writers.push(w);
    }
    quiesce(&sh, Duration::from_secs(1), Duration::from_secs(120));
    let rss_idle = rss_kib(pid);
    println!(
        "clients {clients} in {rooms} room(s), {readers} reader thread(s): connected in {:.1} s ({} closed by the broker); broker RSS {rss_before} KiB before, {rss_idle} KiB idle = {:.2} KiB per idle client",
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
        let cpu_before = cpu_all();
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(throughput_secs);
        let mut sent = vec![0u64; rooms];
        let mut next_rss = start;
        let batch: Vec<u8> = (0..BATCH).flat_map(|_| payload(0)).collect();
        while Instant::now() < end {
            let slowest = sh.slowest(&bases, rooms);
            let mut wrote = false;
            for (room, w) in writers.iter_mut().enumerate() {
                if sent[room] - slowest[room].min(sent[room]) < WINDOW {
                    w.write_all(&batch)?;
                    sent[room] += BATCH;
                    wrote = true;
                }
            }
            if !wrote {
                // Every writer is a window ahead: leave the cores to the broker and readers.
                std::thread::sleep(Duration::from_micros(100));
            }
            if Instant::now() >= next_rss {
                peak_rss = peak_rss.max(rss_kib(pid));
                next_rss += Duration::from_millis(200);
            }
        }
        // Lines still in flight count if they arrive within a second.
        let want = base + deliveries(&sent, clients, rooms);
        let drain = Instant::now() + Duration::from_secs(1);
        while sh.total() < want && Instant::now() < drain {
            std::thread::sleep(Duration::from_millis(5));
        }
        let secs = start.elapsed().as_secs_f64();
        let broker_cpu = cpu_all() - cpu_before;
        let got = sh.total() - base;
        let per_sec = got as f64 / secs;
        let attributed = sh.attributed.load(Ordering::Relaxed);
        println!(
            "throughput: {} lines sent in {secs:.2} s, {got} delivered of {} = {per_sec:.0} lines/s summed over clients; attributed {:.1}%; broker RSS peak {peak_rss} KiB; broker CPU {broker_cpu:.0} ms = {:.1} ns per delivery",
            sent.iter().sum::<u64>(),
            want - base,
            100.0 * attributed as f64 / got.max(1) as f64,
            broker_cpu * 1e6 / got.max(1) as f64
        );
        if rate == 0.0 {
            // Half the sustained rate, per room.
            rate = per_sec / clients as f64 / 2.0;
        }
        quiesce(&sh, Duration::from_millis(500), Duration::from_secs(30));
    }

    if rate > 0.0 && latency_secs > 0.0 {
        sh.reset_latency();
        let base = sh.total();
        sh.measure_latency.store(true, Ordering::Relaxed);
        let cpu_before = cpu_all();
        let each_before: Vec<f64> = pids.iter().map(|&p| cpu_ms(p)).collect();
        let own_before = cpu_ms(std::process::id());
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(latency_secs);
        let mut sent = vec![0u64; rooms];
        let mut next_rss = start;
        let mut buf = Vec::new();
        let mut last_wake = start;
        let mut stuck = 0;
        if all_send {
            let mut sample = || {
                if Instant::now() >= next_rss {
                    peak_rss = peak_rss.max(rss_kib(pid));
                    next_rss += Duration::from_millis(200);
                }
            };
            let done = crowd::send(&members, &sh, rate, latency_secs, &mut sample);
            sent[0] = done.lines;
            stuck = done.stuck;
        }
        while !all_send && Instant::now() < end {
            // Sleep until the next line is due (or the next RSS sample), but at least a
            // millisecond: at high rates the lines of a millisecond go out in one write, as
            // they did with the fixed 1 ms tick, while at low rates the driver does not wake
            // a thousand times a second for nothing.
            // Room r's k-th line is due at (k + r / rooms) / rate: the rooms' lines are spread
            // evenly over each period instead of arriving all at once.
            let phase = |room: usize| room as f64 / rooms as f64;
            let next_line = (0..rooms)
                .map(|r| (sent[r] + 1) as f64 + phase(r))
                .fold(f64::MAX, f64::min);
            let next_line = start + Duration::from_secs_f64(next_line / rate);
            let wake = next_line.min(next_rss).min(end).max(last_wake + TICK);
            if let Some(d) = wake.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            last_wake = Instant::now();
            let periods = start.elapsed().as_secs_f64() * rate;
            for (room, w) in writers.iter_mut().enumerate() {
                let due = (periods - phase(room)).max(0.0) as u64;
                buf.clear();
                while sent[room] < due {
                    buf.extend_from_slice(&payload(sh.now_us()));
                    sent[room] += 1;
                }
                if !buf.is_empty() {
                    w.write_all(&buf)?;
                }
            }
            if Instant::now() >= next_rss {
                peak_rss = peak_rss.max(rss_kib(pid));
                next_rss += Duration::from_millis(200);
            }
        }
        // Wait for every delivery owed, or for the broker to have sent nothing for 2 s (a
        // line lost to a dropped client never arrives), at most 30 s: a shorter quiet spell
        // can be a retransmission timeout on an overloaded loopback, with lines still to come.
        let owed = if all_send {
            sent[0] * (clients as u64 - 1)
        } else {
            deliveries(&sent, clients, rooms)
        };
        let want = base + owed;
        let deadline = Instant::now() + Duration::from_secs(30);
        while sh.total() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if sh.now_us() - sh.last_rx_us.load(Ordering::Relaxed) > 2_000_000 {
                break;
            }
        }
        quiesce(&sh, Duration::from_millis(300), Duration::from_secs(5));
        let cpu = cpu_all() - cpu_before;
        let each: Vec<String> = pids
            .iter()
            .zip(&each_before)
            .map(|(&p, b)| format!("{:.0}", cpu_ms(p) - b))
            .collect();
        let own = cpu_ms(std::process::id()) - own_before;
        sh.measure_latency.store(false, Ordering::Relaxed);
        let h = sh.latency();
        let lines_in = sent.iter().sum::<u64>().max(1);
        let expected = owed.max(1);
        let (who, per_line) = if all_send {
            let every = clients as f64 / rate;
            (
                format!(
                    "every member sending, one line each every {every:.3} s; {lines_in} lines made, {stuck} never taken by the broker; "
                ),
                clients as f64 - 1.0,
            )
        } else {
            (String::new(), clients as f64)
        };
        println!(
            "latency at {rate:.0} lines/s per room into {rooms} room(s) ({who}{:.0} delivered/s): {} samples of {expected} expected, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; broker CPU {:.2} ms per line in ({:.2} µs per delivery; this driver {:.2} µs per delivery); {} clients closed by the broker; broker RSS peak {peak_rss} KiB",
            rate * per_line,
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            cpu / lines_in as f64,
            cpu * 1000.0 / expected as f64,
            own * 1000.0 / expected as f64,
            sh.closed.load(Ordering::Relaxed)
        );
        if pids.len() > 1 {
            println!("CPU ms per PID ({}): {}", args[2], each.join(", "));
        }
    }
    Ok(())
}

/// Deliveries owed for `sent[r]` lines into room r, which holds the clients i with
/// i % rooms == r.
fn deliveries(sent: &[u64], clients: usize, rooms: usize) -> u64 {
    sent.iter()
        .enumerate()
        .map(|(r, &n)| n * clients.saturating_sub(r).div_ceil(rooms) as u64)
        .sum()
}
