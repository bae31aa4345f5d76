//! The server framework, seen from clients of `taojie serve echo`: connection cap, idle
//! timeout, clients that vanish, EMFILE, graceful shutdown.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// Sends `msg` and reads the echo back within 5 s.
fn round_trip(addr: &str, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
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
    let mut extra = TcpStream::connect(&addr).unwrap();
    let t = Instant::now();
    assert!(
        closed_within(&mut extra, Duration::from_secs(5)),
        "4th client was not refused"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        t.elapsed()
    );
    // The held clients still work, and a freed slot is used again.
    held[0].write_all(b"y").unwrap();
    let mut b = [0u8; 1];
    held[0].read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
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
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)),
        "idle client kept open"
    );
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

#[test]
fn out_of_file_descriptors_backs_off_and_recovers() {
    // A low hard limit the server cannot raise: accept() fails with EMFILE while the crowd
    // holds every descriptor; the server must neither exit nor spin, and serve once they go.
    let mut child = Command::new("bash")
        .args([
            "-c",
            "ulimit -n 40 && exec \"$0\" serve echo --listen 127.0.0.1:0",
            common::bin(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let addr = line.split(' ').nth(2).expect("announce line").to_string();
    let crowd: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300)); // let the server hit EMFILE and back off
    drop(crowd);
    let deadline = Instant::now() + Duration::from_secs(10);
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
    assert!(child.try_wait().unwrap().is_none(), "server exited");
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("accept failed"),
        "no backoff warning in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sigterm_with_clients_connected_exits_zero_within_the_grace_period() {
    let mut server = Server::start(
        &["serve", "echo", "--listen", "127.0.0.1:0", "--grace", "1"],
        1,
    );
    let addr = server.addr("echo", "tcp");
    let mut busy = TcpStream::connect(&addr).unwrap();
    busy.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    busy.read_exact(&mut b).unwrap();
    let t = Instant::now();
    let status = server
        .terminate(Duration::from_secs(5))
        .expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // The held connection was closed, and nothing listens any more.
    assert!(closed_within(&mut busy, Duration::from_secs(2)));
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn a_connection_that_finishes_within_the_grace_period_gets_its_whole_answer() {
    let mut server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let addr = server.addr("echo", "tcp");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"first").unwrap();
    let mut b = [0u8; 5];
    s.read_exact(&mut b).unwrap();
    server.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    // Shutdown has begun; this connection is still served until it ends.
    s.write_all(b"second").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"second");
    let status = common::wait_timeout(&mut server.child, Duration::from_secs(5)).unwrap();
    assert!(status.success());
}
