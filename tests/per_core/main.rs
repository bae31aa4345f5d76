//! `taojie serve --per-core`: one single-threaded runtime per core, each accepting on its own
//! SO_REUSEPORT listener. Many connections spread over the threads are each served intact;
//! the connection cap is one for the process, not one per thread; SIGTERM drains every
//! thread's connections (and cuts them at the grace deadline), a second signal stops at once;
//! SIGHUP's new limits reach every thread; each socket's address line is printed once.
//! `services.rs`: the proxy and the chat broker with their connections on every thread.
#[path = "../common/mod.rs"]
mod common;
mod services;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::Server;

/// How long any one wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(20);
/// Threads the server runs: more than this machine's 2 cores, so most connections land on a
/// thread other than the first.
const THREADS: &str = "4";

/// Starts `taojie serve ARGS --per-core --threads 4` with stderr captured (RUST_LOG unset)
/// and waits for `n` address lines.
pub fn serve(args: &[&str], n: usize) -> Server {
    let mut cmd = common::command(common::bin());
    cmd.arg("serve")
        .args(args)
        .args(["--per-core", "--threads", THREADS])
        .env_remove("RUST_LOG");
    Server::spawn_capturing(cmd, n)
}

/// A connection with read and write timeouts.
pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    s
}

/// Sends `msg` and reads as many bytes back.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// Whether the server closed `s` without answering what it sent (a refused connection).
fn closed_unanswered(s: &mut TcpStream) -> bool {
    let _ = s.write_all(b"hello");
    let mut b = [0u8; 8];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("the server neither answered nor closed the connection in {LIMIT:?}")
        }
        Err(_) => true,
    }
}

/// TCP sockets in LISTEN state on `port` (IPv4, this network namespace), from /proc/net/tcp.
fn listeners_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
        })
        .count()
}

/// Waits until `n` sockets listen on `port`. The address line comes out as the first
/// listener is bound; its siblings follow as the service starts serving it.
pub fn wait_listeners(port: u16, n: usize) {
    let deadline = Instant::now() + LIMIT;
    while listeners_on(port) != n {
        assert!(
            Instant::now() < deadline,
            "{} listeners on port {port}, not {n}",
            listeners_on(port)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's threads named `taojie-core-I` (the runtimes beside the first).
fn core_threads(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", server.child.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("taojie-core-"))
        .count()
}

/// The port of HOST:PORT.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn many_connections_spread_over_the_threads_are_each_served_intact() {
    let server = serve(&["echo", "--listen", "127.0.0.1:0"], 1);
    let addr = server.addr("echo", "tcp");
    // One listener per thread, all on the port the first one got from port 0.
    wait_listeners(port_of(&addr), 4);
    assert_eq!(core_threads(&server), 3, "threads beside the first");
    // 200 connections open at once (their source ports spread them over the four
    // listeners), each with bytes of its own, going both ways in several rounds.
    let mut conns: Vec<TcpStream> = (0..200).map(|_| connect(&addr)).collect();
    for round in 0..3u8 {
        for (i, s) in conns.iter_mut().enumerate() {
            let msg = format!("conn {i} round {round} {}", "x".repeat(i % 97));
            assert_eq!(round_trip(s, msg.as_bytes()), msg.as_bytes(), "conn {i}");
        }
    }
    // And a large one, with short reads and writes on whichever thread took it.
    let mut big = connect(&addr);
    let data: Vec<u8> = (0..2 << 20).map(|i| (i % 251) as u8).collect();
    let mut w = big.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    big.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "{} of {} bytes back", back.len(), data.len());
}

#[test]
fn the_connection_cap_is_one_for_every_thread() {
    let server = serve(&["echo", "--listen", "127.0.0.1:0", "--max-conns", "3"], 1);
    let addr = server.addr("echo", "tcp");
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(&addr)).collect();
    for (i, s) in open.iter_mut().enumerate() {
        assert_eq!(round_trip(s, b"in"), b"in", "conn {i}");
    }
    // Whichever thread's listener they reach, the next ones are all over the one cap.
    for i in 0..12 {
        assert!(
            closed_unanswered(&mut connect(&addr)),
            "connection {} was served past --max-conns 3",
            i + 4
        );
    }
    // One leaves; its place is free for a newcomer on any thread.
    open.pop();
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut s = connect(&addr);
        if !closed_unanswered(&mut s) {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place was never given");
        std::thread::sleep(Duration::from_millis(20));
    }
    for s in &mut open {
        assert_eq!(round_trip(s, b"still"), b"still");
    }
}

/// Sends `sig` and waits until shutdown has begun and every thread's listener is gone.
fn begin_shutdown(server: &mut Server, addr: &str, sig: i32) {
    server.signal(sig);
    server.wait_stderr("shutting down");
    let deadline = Instant::now() + LIMIT;
    while listeners_on(port_of(addr)) > 0 {
        assert!(Instant::now() < deadline, "still listening after {sig}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(TcpStream::connect(addr).is_err(), "accepted after {sig}");
}

#[test]
fn sigterm_drains_every_threads_connections_then_exits_zero() {
    let mut server = serve(&["echo", "--listen", "127.0.0.1:0", "--grace", "600"], 1);
    let addr = server.addr("echo", "tcp");
    let mut conns: Vec<TcpStream> = (0..40).map(|_| connect(&addr)).collect();
    for s in &mut conns {
        assert_eq!(round_trip(s, b"before"), b"before");
    }
    begin_shutdown(&mut server, &addr, libc::SIGTERM);
    // Every connection, on whichever thread, is still served until its client ends it.
    for s in &mut conns {
        assert_eq!(round_trip(s, b"during"), b"during");
    }
    assert!(server.child.try_wait().unwrap().is_none(), "left early");
    for mut s in conns {
        s.write_all(b"last").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"last");
    }
    let status = common::wait_timeout(&mut server.child, LIMIT).expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
    let err = server.stderr_until_closed(LIMIT);
    assert!(
        !err.iter().any(|l| l.contains("grace period over")),
        "cut, not drained: {err:?}"
    );
}

#[test]
fn the_grace_deadline_cuts_every_threads_connections_and_a_second_signal_stops_at_once() {
    let mut server = serve(&["echo", "--listen", "127.0.0.1:0", "--grace", "1"], 1);
    let addr = server.addr("echo", "tcp");
    let mut held: Vec<TcpStream> = (0..40).map(|_| connect(&addr)).collect();
    for s in &mut held {
        assert_eq!(round_trip(s, b"x"), b"x");
    }
    begin_shutdown(&mut server, &addr, libc::SIGTERM);
    let status = common::wait_timeout(&mut server.child, LIMIT).expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
    for s in &mut held {
        let mut b = [0u8; 1];
        assert!(
            matches!(s.read(&mut b), Ok(0) | Err(_)),
            "a connection outlived the server"
        );
    }

    let mut server = serve(&["echo", "--listen", "127.0.0.1:0", "--grace", "600"], 1);
    let addr = server.addr("echo", "tcp");
    let mut held: Vec<TcpStream> = (0..40).map(|_| connect(&addr)).collect();
    for s in &mut held {
        assert_eq!(round_trip(s, b"x"), b"x");
    }
    begin_shutdown(&mut server, &addr, libc::SIGTERM);
    server.signal(libc::SIGINT);
    let status = common::wait_timeout(&mut server.child, LIMIT).expect("still running");
    assert_eq!(status.code(), Some(130));
}

#[test]
fn sighup_limits_reach_every_thread() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[echo]\nlisten = \"127.0.0.1:0\"\nmax-conns = 1\n";
    let config = dir.path().join("taojie.toml");
    std::fs::write(&config, text).unwrap();
    let mut server = serve(&["--config", config.to_str().unwrap()], 1);
    let addr = server.addr("echo", "tcp");
    let mut first = connect(&addr);
    assert_eq!(round_trip(&mut first, b"one"), b"one");
    for _ in 0..8 {
        assert!(
            closed_unanswered(&mut connect(&addr)),
            "max-conns = 1 let one more in"
        );
    }
    std::fs::write(&config, text.replace("max-conns = 1", "max-conns = 3")).unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("re-read");
    assert!(line.contains("[echo] max-conns = 3"), "{line}");
    let mut more: Vec<TcpStream> = (0..2).map(|_| connect(&addr)).collect();
    for s in &mut more {
        assert_eq!(round_trip(s, b"fits"), b"fits");
    }
    for _ in 0..8 {
        assert!(
            closed_unanswered(&mut connect(&addr)),
            "max-conns = 3 let a fourth in"
        );
    }
    assert_eq!(round_trip(&mut first, b"still"), b"still");
}

#[test]
fn every_service_prints_each_address_line_once() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = common::command(common::bin());
    cmd.args(["serve", "--any-port", "--per-core", "--threads", THREADS])
        .env("XDG_DATA_HOME", data.path())
        .env_remove("RUST_LOG");
    let mut server = Server::spawn_capturing(cmd, 11);
    let mut seen: Vec<(String, String)> = server
        .lines
        .iter()
        .map(|(s, p, _)| (s.clone(), p.clone()))
        .collect();
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        seen.len(),
        before,
        "a line printed twice: {:?}",
        server.lines
    );
    // Each TCP one is spread over the threads on its one port; UDP stays on the first.
    for (_, proto, addr) in &server.lines {
        if proto == "tcp" {
            wait_listeners(port_of(addr), 4);
        }
    }
    // One runtime per thread, shared by all those listeners: 3 beside the first, not 3 each.
    assert_eq!(core_threads(&server), 3, "threads beside the first");
    let mut echo = connect(&server.addr("echo", "tcp"));
    assert_eq!(round_trip(&mut echo, b"ping"), b"ping");
    let mut daytime = connect(&server.addr("daytime", "tcp"));
    let mut line = String::new();
    daytime.read_to_string(&mut line).unwrap();
    assert!(
        line.ends_with('\n') && line.len() > 10,
        "daytime said {line:?}"
    );
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(LIMIT)).unwrap();
    u.send_to(b"hello", server.addr("echo", "udp")).unwrap();
    let mut b = [0u8; 16];
    let (n, _) = u.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"hello");
    drop(echo);
    // No line comes later, up to the end.
    server.signal(libc::SIGTERM);
    let later = server.stdout_until_closed(LIMIT);
    assert!(later.is_empty(), "printed later: {later:?}");
    let status = common::wait_timeout(&mut server.child, LIMIT).expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
}
