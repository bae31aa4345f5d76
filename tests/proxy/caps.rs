//! `--max-conns-per-user`: a user with that many connections open is refused the next one
//! (HTTP 502, one log line), and served again once one of theirs has closed.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::{proxy, users_file};

/// `ann:s3cret pass` in Basic's base64.
const ANN_BASIC: &str = "YW5uOnMzY3JldCBwYXNz";

/// Opens a CONNECT tunnel to `port` as ann; returns the connection and the status line.
fn tunnel(addr: &str, port: u16) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let connect = format!(
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: Basic {ANN_BASIC}\r\n\r\n"
    );
    s.write_all(connect.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or("").to_string();
    (s, status)
}

#[test]
fn a_user_at_their_connection_cap_is_refused_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (mut server, addr) = proxy(
        "127.0.0.1:0",
        &[
            "--allow",
            "127.0.0.1",
            "--users",
            &users,
            "--max-conns-per-user",
            "1",
        ],
    );
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let (first, status) = tunnel(&addr, port);
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    let (held, _) = target.accept().unwrap();
    let (_second, status) = tunnel(&addr, port);
    assert!(status.starts_with("HTTP/1.1 502 "), "{status}");
    let line = server.wait_stderr("user connection cap");
    assert!(line.contains("\"ann\""), "{line}");
    // Both ends of the first tunnel close; its slot comes free.
    drop(first);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_again, status) = tunnel(&addr, port);
        if status.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {status}");
        thread::sleep(Duration::from_millis(50));
    }
}
