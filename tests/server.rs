//! The server framework, seen from clients of `taojie serve echo`: connection cap, idle
//! timeout, clients that vanish, EMFILE, graceful shutdown. No test bounds how long anything
//! took (that is bench/'s); the waits here only end a hang.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

/// How long a test waits for what must happen before calling it a hang.
const HANG: Duration = Duration::from_secs(30);

/// Sends `msg` and reads the echo back (bounded by [`HANG`]).
fn round_trip(addr: &str, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).unwrap();
    got
}

/// True if the server closed `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

#[test]
fn clients_beyond_max_conns_are_closed_at_once_and_others_still_served() {
    let server = Server::start(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--max-conns",
            "3",
        ],
        1,
    );
    let addr = server.addr("echo", "tcp");
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for s in &mut held {
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    // No idle timeout is set: a close is the cap's refusal.
    let mut extra = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_within(&mut extra, HANG),
        "4th client was not refused"
    );
    // The held clients still work, and a freed slot is used again.
    held[0].write_all(b"y").unwrap();
    let mut b = [0u8; 1];
    held[0].read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
    drop(held.pop());
    let deadline = Instant::now() + HANG;
    loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.write_all(b"z").is_ok() && s.read_exact(&mut b).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "freed slot was never reused");
    }
}

#[test]
fn idle_client_is_dropped_and_server_goes_on() {
    let server = Server::start(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "1",
        ],
        1,
    );
    let addr = server.addr("echo", "tcp");
    let mut idle = TcpStream::connect(&addr).unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut idle, HANG), "idle client kept open");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        t.elapsed()
    );
    assert_eq!(round_trip(&addr, b"still here"), b"still here");
}

#[test]
fn a_client_that_vanishes_mid_stream_does_not_disturb_others() {
    let server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let addr = server.addr("echo", "tcp");
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).unwrap();
        // Send a lot without reading, then vanish: the server's writes hit a dead socket.
        let _ = s.write_all(&vec![b'q'; 256 * 1024]);
        // A reset rather than a FIN: close with unread data pending.
        drop(s);
    }
    assert_eq!(
        round_trip(&addr, b"after the crowd left"),
        b"after the crowd left"
    );
}

#[test]
fn many_clients_at_once_each_get_their_own_bytes() {
    let server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0", "--upper"], 1);
    let addr = server.addr("echo", "tcp");
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let msg = format!("client {i} says hello ").repeat(100);
                let got = round_trip(&addr, msg.as_bytes());
                assert_eq!(got, msg.to_uppercase().as_bytes());
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// CPU time (user + system, all threads) process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses: utime is the
    // 14th field of the line, stime the 15th, in clock ticks.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((f[0] + f[1]) * 1000 / hz)
}

#[test]
fn out_of_file_descriptors_backs_off_and_recovers() {
    // A low hard limit the server cannot raise: accept() fails with EMFILE while the crowd
    // holds every descriptor; the server must neither exit nor spin, and serve once they go.
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        "ulimit -n 40 && exec \"$0\" serve echo --listen 127.0.0.1:0",
        common::bin(),
    ]);
    let mut server = Server::spawn_capturing(cmd, 1);
    let addr = server.addr("echo", "tcp");
    let pid = server.child.id();
    let crowd: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    server.wait_stderr("accept failed");
    // Backing off, not spinning: over two seconds of EMFILE the server burns a small part of
    // one core (a spinning accept loop burns whatever the scheduler gives it, all of a core
    // on an idle machine). A busy machine only lowers what a spinning server could get.
    let (cpu_before, wall) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, held) = (cpu_time(pid) - cpu_before, wall.elapsed());
    eprintln!("during EMFILE: {cpu:?} of CPU in {held:?}");
    assert!(
        cpu < held / 10,
        "the server spun on EMFILE: {cpu:?} of CPU in {held:?}"
    );
    drop(crowd);
    let deadline = Instant::now() + HANG;
    loop {
        let ok = (|| {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"hi").ok()?;
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            (&b == b"hi").then_some(())
        })();
        if ok.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never recovered from EMFILE"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.child.try_wait().unwrap().is_none(), "server exited");
    let _ = server.child.kill();
    let _ = server.child.wait();
    let err = server.stderr_until_closed(HANG).join("\n");
    assert!(!err.contains("panicked"), "{err}");
}

/// Starts `serve echo` with `flags` and its stderr captured, and one connection that has had
/// an echo back.
fn echo_with_a_client(flags: &[&str]) -> (Server, String, TcpStream) {
    let mut cmd = crate::common::command(common::bin());
    cmd.args(["serve", "echo", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env_remove("RUST_LOG");
    let server = Server::spawn_capturing(cmd, 1);
    let addr = server.addr("echo", "tcp");
    let mut busy = TcpStream::connect(&addr).unwrap();
    busy.set_read_timeout(Some(HANG)).unwrap();
    busy.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    busy.read_exact(&mut b).unwrap();
    (server, addr, busy)
}

/// Sends `sig` and waits until shutdown has begun: the server says so and its listening
/// socket is gone (a new connection is refused).
fn begin_shutdown(server: &mut Server, addr: &str, sig: i32) {
    server.signal(sig);
    server.wait_stderr("shutting down");
    let deadline = Instant::now() + HANG;
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after {sig}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_with_clients_connected_exits_zero_once_the_grace_period_is_over() {
    let (mut server, addr, mut busy) = echo_with_a_client(&["--grace", "1"]);
    let t = Instant::now();
    begin_shutdown(&mut server, &addr, libc::SIGTERM);
    // The client stays and says nothing: the grace period ends it, and the server says so.
    server.wait_stderr("grace period over; closing open connections");
    let status = common::wait_timeout(&mut server.child, HANG).expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "exited before the grace period was over: {:?}",
        t.elapsed()
    );
    // The held connection was closed, and nothing listens any more.
    assert!(closed_within(&mut busy, HANG));
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn a_connection_that_finishes_within_the_grace_period_gets_its_whole_answer() {
    let (mut server, addr, mut s) = echo_with_a_client(&["--grace", "600"]);
    begin_shutdown(&mut server, &addr, libc::SIGTERM);
    // Shutdown has begun (nothing listens); this connection is still served until it ends.
    s.write_all(b"second").unwrap();
    let mut b = [0u8; 6];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"second");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server left before its last connection ended"
    );
    s.write_all(b"third").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"third");
    // The last connection ended: the server is done long before its 600 s of grace.
    let status = common::wait_timeout(&mut server.child, HANG).expect("server did not exit");
    assert!(status.success());
    let err = server.stderr_until_closed(HANG);
    assert!(
        !err.iter().any(|l| l.contains("grace period over")),
        "the connection was cut, not drained: {err:?}"
    );
}

#[test]
fn a_second_signal_stops_at_once() {
    for (first, second) in [(libc::SIGINT, libc::SIGINT), (libc::SIGTERM, libc::SIGINT)] {
        let (mut server, addr, mut busy) = echo_with_a_client(&["--grace", "600"]);
        begin_shutdown(&mut server, &addr, first);
        // The open connection would keep it for 600 s; a second signal ends it now.
        server.signal(second);
        let status = common::wait_timeout(&mut server.child, HANG)
            .unwrap_or_else(|| panic!("signal {second} after {first}: still running"));
        assert_eq!(status.code(), Some(130), "signal {second} after {first}");
        assert!(closed_within(&mut busy, HANG));
    }
}
