//! Services beyond echo under `--per-core`: the proxy relays connections accepted on every
//! thread to their targets, and the chat broker's rooms, shared by every thread, carry a post
//! to members whose connections live on other threads than the poster's.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};

use super::{connect, port_of, round_trip, serve, wait_listeners};

/// A loopback echo target: a thread per connection copies what it reads back.
fn echo_target() -> std::net::SocketAddr {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in target.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    addr
}

#[test]
fn the_proxy_relays_connections_accepted_on_every_thread() {
    let target = echo_target();
    let IpAddr::V4(ip) = target.ip() else {
        unreachable!()
    };
    let server = serve(
        &["proxy", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1"],
        1,
    );
    let addr = server.addr("proxy", "tcp");
    wait_listeners(port_of(&addr), 4);
    let mut conns = Vec::new();
    for i in 0..40 {
        let mut s = connect(&addr);
        // SOCKS5 (RFC 1928): no authentication, then CONNECT to an IPv4 address.
        s.write_all(&[5, 1, 0]).unwrap();
        let mut method = [0u8; 2];
        s.read_exact(&mut method).unwrap();
        assert_eq!(method, [5, 0], "conn {i}");
        let mut request = vec![5, 1, 0, 1];
        request.extend(ip.octets());
        request.extend(target.port().to_be_bytes());
        s.write_all(&request).unwrap();
        let mut reply = [0u8; 10];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[..2], [5, 0], "conn {i}: SOCKS reply {}", reply[1]);
        conns.push(s);
    }
    // All relays open at once, whichever thread accepted each, and each carries its own bytes.
    for round in 0..2 {
        for (i, s) in conns.iter_mut().enumerate() {
            let msg = format!("through the proxy: conn {i} round {round}");
            assert_eq!(round_trip(s, msg.as_bytes()), msg.as_bytes(), "conn {i}");
        }
    }
}

/// Picks `name` on a chat connection and waits for the broker to confirm it.
fn named(s: TcpStream, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    (&s).write_all(format!("/nick {name}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    while !line.ends_with(&format!("is now known as {name}\n")) {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed before /nick");
    }
    (s, r)
}

#[test]
fn a_chat_post_reaches_members_on_every_thread() {
    let server = serve(&["chat", "--listen", "127.0.0.1:0"], 1);
    let addr = server.addr("chat", "tcp");
    wait_listeners(port_of(&addr), 4);
    let mut members: Vec<_> = (0..12)
        .map(|i| named(connect(&addr), &format!("m{i}")))
        .collect();
    members[0].0.write_all(b"hello from m0\n").unwrap();
    for (i, (_, r)) in members.iter_mut().enumerate().skip(1) {
        let mut line = String::new();
        while !line.contains("hello from m0") {
            line.clear();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "m{i} closed before the post"
            );
        }
        assert!(line.contains("m0"), "m{i} got {line:?}");
    }
}
