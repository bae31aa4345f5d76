//! Hostile attachment offers on loopback: a forged sender offering 100 files, or one of a
//! declared size near 2^60, to `msg listen --accept-files`, with a TCP server behind it that
//! serves any file it is asked for, as fast as asked. Nothing is fetched unasked; a trusted
//! sender is held to the caps (files per message, size, total, fetches at once, free space).
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Member, WAIT};

/// A TCP server that answers every request with `size` bytes, 64 KiB every 10 ms, and counts
/// connections: in all, and the most at once.
struct Feeder {
    connections: Arc<AtomicUsize>,
    at_once: Arc<AtomicUsize>,
}

impl Feeder {
    fn start(addr: &str, size: usize) -> Feeder {
        let listener = TcpListener::bind(addr).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let at_once = Arc::new(AtomicUsize::new(0));
        let (c, n, m) = (connections.clone(), now.clone(), at_once.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                c.fetch_add(1, Ordering::SeqCst);
                let current = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(current, Ordering::SeqCst);
                let n = n.clone();
                std::thread::spawn(move || {
                    let mut request = [0u8; 512];
                    let _ = stream.read(&mut request);
                    let chunk = vec![0x5a; 64 * 1024];
                    let mut left = size;
                    let mut counted = true;
                    while left > 0 {
                        let k = left.min(chunk.len());
                        // No longer "at once" before the last chunk: the client can start its
                        // next fetch only once it has that.
                        if k == left {
                            n.fetch_sub(1, Ordering::SeqCst);
                            counted = false;
                        }
                        if stream.write_all(&chunk[..k]).is_err() {
                            break;
                        }
                        left -= k;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if counted {
                        n.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Feeder {
            connections,
            at_once,
        }
    }
}

/// A message from `user` offering `files` files of `size` bytes (ids from `first`).
fn offer(number: u32, first: u32, files: u32, size: u64) -> Vec<u8> {
    // SENDMSG | SENDCHECK | FILEATTACH
    let mut p = format!("1:{number}:mallory:evil:{}:files for you\0", 0x20_0120).into_bytes();
    for id in first..first + files {
        p.extend_from_slice(format!("{id}:f{id}.bin:{size:x}:0:1:\x07").as_bytes());
    }
    p.push(0);
    p
}

fn inbox_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn offers_from_anyone_are_fetched_only_when_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().to_str().unwrap();
    let feeder = Feeder::start("127.77.11.2:2425", 1 << 20);
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.11.1",
        "--broadcast",
        "127.77.11.9",
        "--accept-files",
        inbox,
    ]);
    let evil = UdpSocket::bind("127.77.11.2:2425").unwrap();
    // Four packets, 100 files of 1 MiB.
    for i in 0..4 {
        evil.send_to(&offer(100 + i, i * 25, 25, 1 << 20), "127.77.11.1:2425")
            .unwrap();
    }
    for i in 0..4 {
        ann.wait_event("the offers", |e| {
            e["event"] == "message" && e["packet"] == 100 + i
        });
    }
    // Nothing asked for it: no connection, no file, within a second of the offers.
    std::thread::sleep(Duration::from_secs(1));
    let unasked = feeder.connections.load(Ordering::SeqCst);
    assert_eq!(unasked, 0, "{unasked} files fetched unasked");
    assert!(inbox_files(dir.path()).is_empty());
    ann.wait_event("the last offer", |e| {
        e["event"] == "offer" && e["offer"] == 80
    });
    let offers = ann
        .events()
        .iter()
        .filter(|e| e["event"] == "offer")
        .count();
    assert_eq!(offers, 80, "20 offers from each message");
    // Accepting one fetches that one.
    ann.proc.feed(b"accept 7\n".to_vec());
    let saved = ann.wait_event("the accepted file", |e| e["event"] == "file");
    assert_eq!(saved["error"], serde_json::Value::Null, "{saved}");
    assert_eq!(inbox_files(dir.path()), ["f6.bin"]);
    assert_eq!(feeder.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn a_trusted_sender_is_held_to_the_caps() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().to_str().unwrap();
    let feeder = Feeder::start("127.77.12.2:2425", 1 << 20);
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.12.1",
        "--broadcast",
        "127.77.12.9",
        "--accept-files",
        inbox,
        "--accept-from",
        "127.77.12.2",
        "--max-files",
        "5",
        "--max-file-size",
        "2M",
        "--max-total",
        "3M",
        "--max-fetches",
        "2",
        "--min-free",
        "1M",
    ]);
    let evil = UdpSocket::bind("127.77.12.2:2425").unwrap();
    let to = "127.77.12.1:2425";
    // One file declared near 2^60 bytes, then 100 files of 1 MiB.
    evil.send_to(&offer(1, 0, 1, 1 << 60), to).unwrap();
    let refused = ann.wait_event("the huge file refused", |e| e["event"] == "file");
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("--max-file-size"), "{refused}");
    evil.send_to(&offer(2, 1, 100, 1 << 20), to).unwrap();
    let ignored = ann.wait_event("the ignored files", |e| e["event"] == "ignored");
    assert_eq!(ignored["files"], 95);
    let deadline = Instant::now() + WAIT;
    let mut results = Vec::new();
    while results.len() < 5 && Instant::now() < deadline {
        results.push(ann.wait_event("a file's result", |e| e["event"] == "file"));
    }
    let fetched = results.iter().filter(|e| e["error"].is_null()).count();
    let over_total = results
        .iter()
        .filter(|e| {
            e["error"]
                .as_str()
                .is_some_and(|s| s.contains("--max-total"))
        })
        .count();
    assert_eq!((fetched, over_total), (3, 2), "{results:#?}");
    assert_eq!(inbox_files(dir.path()).len(), 3);
    assert_eq!(feeder.connections.load(Ordering::SeqCst), 3);
    let at_once = feeder.at_once.load(Ordering::SeqCst);
    assert!(at_once <= 2, "{at_once} fetches at once");
    let total: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(total, 3 << 20);
}

#[test]
fn a_file_that_would_leave_too_little_free_space_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let feeder = Feeder::start("127.77.13.2:2425", 4096);
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.13.1",
        "--broadcast",
        "127.77.13.9",
        "--accept-files",
        dir.path().to_str().unwrap(),
        "--accept-from",
        "127.77.13.2",
        "--min-free",
        "1000000T",
    ]);
    let evil = UdpSocket::bind("127.77.13.2:2425").unwrap();
    evil.send_to(&offer(1, 0, 1, 4096), "127.77.13.1:2425")
        .unwrap();
    let refused = ann.wait_event("the refusal", |e| e["event"] == "file");
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("free space"), "{refused}");
    assert_eq!(feeder.connections.load(Ordering::SeqCst), 0);
    assert!(inbox_files(dir.path()).is_empty());
}

/// A trusted sender that lies about sizes: a file declared at 100,000 bytes whose sender
/// serves a MiB is taken at the size declared, not a byte more; one declared at 2 MiB whose
/// sender closes after one is an error naming what came, and leaves nothing behind.
#[test]
fn a_sender_that_lies_about_sizes_gets_no_more_and_no_less_in() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().to_str().unwrap();
    let _feeder = Feeder::start("127.77.15.2:2425", 1 << 20);
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.15.1",
        "--broadcast",
        "127.77.15.9",
        "--accept-files",
        inbox,
        "--accept-from",
        "127.77.15.2",
        "--max-file-size",
        "4M",
        "--max-total",
        "10M",
    ]);
    let evil = UdpSocket::bind("127.77.15.2:2425").unwrap();
    let to = "127.77.15.1:2425";
    evil.send_to(&offer(1, 0, 1, 100_000), to).unwrap();
    let more = ann.wait_event("the file declared small", |e| e["event"] == "file");
    assert!(more["error"].is_null(), "{more}");
    evil.send_to(&offer(2, 1, 1, 2 << 20), to).unwrap();
    let less = ann.wait_event("the file declared large", |e| e["event"] == "file");
    let why = less["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("closed after {} of {} bytes", 1 << 20, 2 << 20)),
        "{less}"
    );
    // One file, of the size its sender declared; no partial file of the other.
    assert_eq!(inbox_files(dir.path()), ["f0.bin"]);
    assert_eq!(
        std::fs::metadata(dir.path().join("f0.bin")).unwrap().len(),
        100_000
    );
}

/// A message nobody acknowledges is sent four times, a second apart, and then `msg send`
/// says so and fails.
#[test]
fn an_unacknowledged_message_is_sent_four_times_then_reported() {
    let silent = UdpSocket::bind("127.77.16.2:2425").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sender = std::thread::spawn(|| {
        crate::common::run_with_input(
            &[
                "msg",
                "send",
                "--bind",
                "127.77.16.3",
                "--broadcast",
                "127.77.16.9",
                "127.77.16.2",
                "are you there?",
            ],
            b"",
            WAIT * 2,
        )
    });
    // Every SENDMSG datagram, by packet number, until the sender has given up.
    let mut copies: Vec<String> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut take = |datagram: &[u8]| {
        let fields: Vec<&[u8]> = datagram.splitn(6, |&b| b == b':').collect();
        let command: u32 = std::str::from_utf8(fields[4]).unwrap().parse().unwrap();
        if command & 0xff == 0x20 {
            copies.push(String::from_utf8_lossy(fields[1]).into_owned());
        }
    };
    while !sender.is_finished() {
        if let Ok(n) = silent.recv(&mut buf) {
            take(&buf[..n]);
        }
    }
    let (status, _, err) = sender.join().unwrap();
    // And what is still queued on the socket.
    while let Ok(n) = silent.recv(&mut buf) {
        take(&buf[..n]);
    }
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("did not acknowledge the message (4 tries"),
        "{err}"
    );
    assert_eq!(copies.len(), 4, "{copies:?}");
    assert!(
        copies.iter().all(|n| *n == copies[0]),
        "one packet number: {copies:?}"
    );
}
