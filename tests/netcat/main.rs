//! `taojie connect` and `taojie listen` against taojie's echo server, each other, the real
//! `nc` (OpenBSD) and `ncat`, and Python programs written like the seeds' loops.
//!
//! This file holds the shared helpers, `connect` against `taojie serve echo` and the error
//! cases; `listen.rs` the listener; `interop.rs` the foreign peers.
#[path = "../common/mod.rs"]
mod common;
mod interop;
mod listen;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Proc, Server, bin, run_program, run_with_input};

/// Time limit for one process; generous because the machine may be busy.
const LIMIT: Duration = Duration::from_secs(60);
/// Time limit for an address line or an expected reply.
const WAIT: Duration = Duration::from_secs(20);
/// 8 MiB, the bulk payload.
const BULK: usize = 8 << 20;

/// Pseudo-random bytes (xorshift), every value from 0 to 255, reproducible per seed.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `program ARGS PORT`, a peer that must be given its port (`nc -l`, `ncat -l`), on
/// an unused port, and waits until it and nothing else holds it (`common::ports`): when
/// another process got there first, the peer is started again on another port.
fn peer_on_port(program: &str, args: &[&str], udp: bool) -> (Proc, u16) {
    let mut why = Vec::new();
    for _ in 0..5 {
        let port = common::unused_port(udp);
        let port_arg = port.to_string();
        let mut full = args.to_vec();
        full.push(&port_arg);
        let mut peer = Proc::spawn(program, &full);
        match common::ports::wait_held(&mut peer.child, udp, port, WAIT) {
            Ok(()) => return (peer, port),
            Err(e) => why.push(e),
        }
    }
    panic!("{program} held no port of its own in 5 tries: {why:#?}");
}

/// Starts `taojie listen ARGS`; returns it and the address from its `listen PROTO ADDR` line.
fn start_listen(args: &[&str]) -> (Proc, String) {
    let mut full = vec!["listen"];
    full.extend_from_slice(args);
    let mut p = Proc::spawn(bin(), &full);
    let line = p.wait_stderr("listen ", WAIT);
    let addr = line
        .splitn(3, ' ')
        .nth(2)
        .expect("listen PROTO ADDR")
        .to_string();
    (p, addr)
}

/// Reads a `KEY VALUE` line a Python peer printed on stdout.
fn peer_line(p: &mut Proc, key: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&p.stdout).to_string();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with(key) && text.contains('\n'))
        {
            return line[key.len()..].trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {key:?} line from the peer: {text:?}"
        );
        let have = p.stdout.len();
        p.wait_stdout(have + 1, WAIT);
    }
}

fn assert_clean_stderr(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

// ---- taojie connect against taojie serve echo ----

/// Sends 8 MiB of random bytes through `taojie connect` to an echo server and checks every
/// byte comes back and the command ends by itself after stdin EOF.
fn echo_roundtrip(serve: &[&str], proto: &str, flags: &[&str]) {
    let mut args = vec!["serve", "echo"];
    args.extend_from_slice(serve);
    let server = Server::start(&args, 1);
    let addr = server.addr("echo", proto);
    let data = random_bytes(BULK, 7);
    let mut connect = vec!["connect", &addr];
    connect.extend_from_slice(flags);
    let (status, out, err) = run_with_input(&connect, &data, LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out.len(), data.len());
    assert!(out == data, "bytes changed on the way");
}

#[test]
fn tcp_connect_echoes_8mib_of_binary() {
    echo_roundtrip(&["--listen", "127.0.0.1:0"], "tcp", &[]);
}

#[test]
fn tcp_connect_over_ipv6_echoes_8mib() {
    echo_roundtrip(&["--listen", "[::1]:0"], "tcp", &[]);
}

#[test]
fn unix_connect_echoes_8mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    echo_roundtrip(&["--unix", path.to_str().unwrap()], "unix", &["--unix"]);
}

#[test]
fn udp_connect_prints_the_upper_case_reply_and_ends() {
    let server = Server::start(&["serve", "echo", "--udp", "127.0.0.1:0", "--upper"], 1);
    let addr = server.addr("echo", "udp");
    let text = b"hello udp\n";
    let (status, out, err) = run_with_input(&["connect", "-u", &addr], text, LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"HELLO UDP\n");
    // A bigger input goes out as datagrams of at most 65,507 bytes and all come back.
    let lower: Vec<u8> = random_bytes(40_000, 3)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect();
    let (status, out, err) = run_with_input(&["connect", "-u", &addr], &lower, LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, lower.to_ascii_uppercase());
}

#[test]
fn connect_survives_a_reader_that_stops_reading() {
    let server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let addr = server.addr("echo", "tcp");
    let script =
        r#""$0" connect "$1" < /dev/zero | head -c 1 > /dev/null; echo "status ${PIPESTATUS[0]}""#;
    let (status, out, err) = run_program("bash", &["-c", script, bin(), &addr], b"", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "status 0", "{err}");
    assert_clean_stderr(&err);
}

// ---- errors ----

#[test]
fn connect_to_a_closed_port_is_one_clear_line() {
    // Bound and not listening: a connection is refused, and no one else takes the port.
    let hold = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    hold.bind(&any.into()).unwrap();
    let addr = hold.local_addr().unwrap().as_socket().unwrap().to_string();
    let (status, out, err) = run_with_input(&["connect", &addr], b"x", LIMIT);
    assert!(!status.success());
    assert!(out.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&addr) && err.contains("refused"), "{err}");
    assert_clean_stderr(&err);
}

#[test]
fn connect_reports_a_reset_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut con = Proc::spawn(bin(), &["connect", &addr]);
    con.feed(b"hello".to_vec());
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = [0; 5];
    s.read_exact(&mut buf).unwrap();
    // SO_LINGER 0: close sends RST instead of FIN.
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    let (status, _, err) = con.finish(LIMIT);
    assert!(!status.success());
    assert!(err.contains(&addr) && err.contains("reset"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_clean_stderr(&err);
}

#[test]
fn udp_connect_to_a_closed_port_is_refused() {
    let (_hold, addr) = common::ports::unreachable_udp();
    let addr = addr.to_string();
    let (status, _, err) = run_with_input(&["connect", "-u", &addr], b"anyone?", LIMIT);
    assert!(!status.success());
    assert!(err.contains(&addr) && err.contains("refused"), "{err}");
    assert_clean_stderr(&err);
}

#[test]
fn bad_addresses_are_clear_errors() {
    for args in [
        &["connect", "nonsense"][..],
        &["listen", "nonsense"],
        &["connect", "-u", "x"],
    ] {
        let (status, _, err) = run_with_input(args, b"", LIMIT);
        assert!(!status.success(), "{args:?}");
        assert!(err.contains("HOST:PORT"), "{args:?}: {err}");
        assert_clean_stderr(&err);
    }
    let (status, _, err) =
        run_with_input(&["connect", "--unix", "/nonexistent/x.sock"], b"", LIMIT);
    assert!(!status.success());
    assert!(err.contains("/nonexistent/x.sock"), "{err}");
}
