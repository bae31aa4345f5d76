//! `taojie serve echo` over TCP, UDP and Unix sockets, driven by plain sockets.
mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::Server;

#[test]
fn tcp_echo_returns_every_byte_and_half_closes() {
    let server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let mut s = TcpStream::connect(server.addr("echo", "tcp")).unwrap();
    let payload: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let mut w = s.try_clone().unwrap();
    let p = payload.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&p).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got, payload);
}

#[test]
fn udp_upper_echo_answers_a_largest_datagram() {
    let server = Server::start(&["serve", "echo", "--udp", "127.0.0.1:0", "--upper"], 1);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = vec![b'a'; 65_507];
    u.send_to(&big, server.addr("echo", "udp")).unwrap();
    let mut buf = vec![0; 70_000];
    let n = u.recv(&mut buf).unwrap();
    assert_eq!(n, 65_507);
    assert!(buf[..n].iter().all(|&b| b == b'A'));
}
