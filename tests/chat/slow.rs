//! A client that never reads is dropped, and the broker's memory stays bounded meanwhile.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{WAIT, chat_server, named, raw_client};

/// A client with a small fixed receive buffer (Linux would otherwise grow it to tens of MiB
/// on loopback, and a silent client could swallow the whole test without falling behind).
pub(super) fn small_window_client(addr: &str, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&addr.into()).unwrap();
    named(s.into(), name)
}

/// Resident memory of a process, from /proc/PID/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_never_reads_is_dropped_and_memory_stays_bounded() {
    let server = chat_server(&["--queue", "1000"]);
    let addr = server.addr("chat", "tcp");
    let pid = server.child.id();
    let (_slow, _slow_r) = small_window_client(&addr, "slow");
    let (mut w, _wr) = raw_client(&addr, "w");
    const LINES: usize = 100_000;
    let counts: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let readers: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let (_s, mut r) = raw_client(&addr, &format!("r{i}"));
            let count = count.clone();
            thread::spawn(move || {
                let _keep = _s;
                let mut dropped_notice = false;
                let mut line = String::new();
                while count.load(Ordering::Relaxed) < LINES {
                    line.clear();
                    if r.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    if let Some(rest) = line.strip_prefix("<w> ") {
                        let n: usize = rest[..6].parse().unwrap();
                        assert_eq!(n, count.load(Ordering::Relaxed), "lines out of order");
                        count.fetch_add(1, Ordering::Relaxed);
                    } else if line == "*** slow dropped (not reading)\n" {
                        dropped_notice = true;
                    }
                }
                dropped_notice
            })
        })
        .collect();

    // The writer keeps at most a window of lines ahead of the readers, so the readers
    // (threads in a debug test) are never the slow ones; the silent client falls behind.
    let pad = "x".repeat(140);
    let mut max_rss = 0;
    let mut sent = 0;
    while sent < LINES {
        let batch: String = (sent..sent + 250)
            .map(|i| format!("{i:06} {pad}\n"))
            .collect();
        w.write_all(batch.as_bytes()).unwrap();
        sent += 250;
        let deadline = Instant::now() + WAIT;
        while counts
            .iter()
            .any(|c| c.load(Ordering::Relaxed) + 500 < sent)
        {
            assert!(Instant::now() < deadline, "readers stalled at {sent}");
            thread::sleep(Duration::from_millis(1));
        }
        if sent % 10_000 == 0 {
            max_rss = max_rss.max(rss_kib(pid));
        }
    }
    for r in readers {
        assert!(r.join().unwrap(), "no drop notice for the silent client");
    }
    for c in &counts {
        assert_eq!(c.load(Ordering::Relaxed), LINES);
    }
    eprintln!("broker VmRSS peaked at {max_rss} KiB");
    assert!(max_rss < 64 * 1024, "broker grew to {max_rss} KiB");
}

/// Runs tests/peers/chat_flood.py against a broker started with `flags`; its JSON report.
fn flood(flags: &[&str], extra: &[&str]) -> serde_json::Value {
    let server = chat_server(flags);
    let addr = server.addr("chat", "tcp");
    let pid = server.child.id().to_string();
    let script = super::common::peer_script("chat_flood.py");
    let mut args = vec![script.as_str(), addr.as_str(), pid.as_str()];
    args.extend_from_slice(extra);
    let (st, out, err) =
        super::common::run_program("python3", &args, b"", Duration::from_secs(150));
    assert!(st.success(), "chat_flood.py: {err}");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[test]
fn a_flood_reaches_every_reader_whole_and_only_the_silent_member_is_dropped() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let r = flood(&["--max-lag", "3"], &[]);
    for got in r["readers"].as_array().unwrap() {
        assert_eq!(got, 100_000, "a reader lost lines: {r}");
    }
    assert_eq!(r["ordered"], true, "{r}");
    assert_eq!(r["sender_ok"], true, "the sender was dropped: {r}");
    // Dropped, past --max-lag or its queue's bytes, whichever came first; how soon is
    // bench/chat.sh's to measure.
    let dropped = r["dropped_after"].as_f64();
    assert!(dropped.is_some(), "the silent member was not dropped: {r}");
    let grew = r["max_rss_kib"].as_u64().unwrap() - r["rss_before_kib"].as_u64().unwrap();
    assert!(grew < 64 * 1024, "the broker grew by {grew} KiB: {r}");
}

#[test]
fn a_member_reading_too_slowly_is_dropped_while_the_readers_get_everything() {
    if !crate::common::need::tool("python3") {
        return;
    }
    // 20 lines a second, with more lines than the kernel's socket buffers hold: its oldest
    // queued line soon waits longer than --max-lag, while the fast readers get everything.
    let r = flood(&["--max-lag", "3"], &["--slow-rate", "20"]);
    for got in r["readers"].as_array().unwrap() {
        assert_eq!(got, 100_000, "{r}");
    }
    assert!(
        r["slow_dropped_after"].as_f64().is_some(),
        "the slow reader stayed: {r}"
    );
    assert_eq!(r["sender_ok"], true, "{r}");
}
