//! SOCKS5 UDP ASSOCIATE over IPv6: a client written from RFC 1928 (PySocks opens its control
//! connection over IPv4 only) asks a proxy on [::1] for an association and talks to a taojie
//! UDP echo server on [::1] through it; a denied destination, a stranger on the relay's port
//! and the end of the control connection each get what a user expects.
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::common::Server;
use crate::proxy;

const WAIT: Duration = Duration::from_secs(10);

/// `RSV RSV FRAG ATYP=4 ADDR PORT` and `payload`: a datagram for `to` as a client sends it.
fn datagram(to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let SocketAddr::V6(to) = to else {
        panic!("{to} is not IPv6")
    };
    let mut d = vec![0, 0, 0, 4];
    d.extend_from_slice(&to.ip().octets());
    d.extend_from_slice(&to.port().to_be_bytes());
    d.extend_from_slice(payload);
    d
}

/// The source a relayed datagram names in its header, and its payload.
fn parse(d: &[u8]) -> (SocketAddr, Vec<u8>) {
    assert!(d.len() >= 22, "short datagram {d:?}");
    assert_eq!(&d[..4], &[0, 0, 0, 4], "header {d:?}");
    let ip: [u8; 16] = d[4..20].try_into().unwrap();
    let port = u16::from_be_bytes([d[20], d[21]]);
    (
        SocketAddr::from((Ipv6Addr::from(ip), port)),
        d[22..].to_vec(),
    )
}

/// The control connection's handshake: no login, UDP ASSOCIATE naming `from` as the
/// client's address. Returns the connection and the relay's address from the reply.
fn associate(proxy: &str, from: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    c.read_exact(&mut method).unwrap();
    assert_eq!(method, [5, 0]);
    let mut request = vec![5, 3, 0];
    request.extend_from_slice(&datagram(from, b"")[3..]);
    c.write_all(&request).unwrap();
    let mut reply = [0u8; 22];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(
        &reply[..4],
        &[5, 0, 0, 4],
        "reply {reply:?}: succeeded, an IPv6 address"
    );
    let (relay, _) = parse(&[&[0, 0, 0, 4], &reply[4..]].concat());
    (c, relay)
}

fn recv(s: &UdpSocket) -> (SocketAddr, Vec<u8>) {
    let mut buf = [0u8; 2048];
    let (n, _) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no datagram in {WAIT:?}: {e}"));
    parse(&buf[..n])
}

#[test]
fn udp_associate_over_ipv6_reaches_an_echo_server_and_denied_datagrams_go_nowhere() {
    let echo = Server::start(&["serve", "echo", "--udp", "[::1]:0", "--upper"], 1);
    let target: SocketAddr = echo.addr("echo", "udp").parse().unwrap();
    // A UDP socket the rules deny: it must see nothing.
    let witness = UdpSocket::bind("[::1]:0").unwrap();
    witness.set_nonblocking(true).unwrap();
    let denied = witness.local_addr().unwrap();
    let (mut server, addr) = proxy(
        "[::1]:0",
        &["--deny", &format!(":{}", denied.port()), "--allow", "[::1]"],
    );
    let client = UdpSocket::bind("[::1]:0").unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (control, relay) = associate(&addr, client.local_addr().unwrap());
    assert_eq!(relay.ip(), Ipv6Addr::LOCALHOST, "relay {relay}");

    for i in 0..3 {
        client
            .send_to(&datagram(target, format!("ping {i}").as_bytes()), relay)
            .unwrap();
        assert_eq!(recv(&client), (target, format!("PING {i}").into_bytes()));
    }

    // Denied: dropped and logged. A stranger (another port) on the relay: not relayed, so
    // the echo server's answer to it would come back ahead of LAST. Then LAST goes through.
    client.send_to(&datagram(denied, b"nobody"), relay).unwrap();
    let stranger = UdpSocket::bind("[::1]:0").unwrap();
    stranger
        .send_to(&datagram(target, b"stranger"), relay)
        .unwrap();
    client.send_to(&datagram(target, b"last"), relay).unwrap();
    assert_eq!(recv(&client), (target, b"LAST".to_vec()));
    let mut buf = [0u8; 64];
    assert_eq!(
        witness.recv_from(&mut buf).map_err(|e| e.kind()).err(),
        Some(ErrorKind::WouldBlock),
        "the denied destination got a datagram"
    );
    let line = server.wait_stderr("datagram denied");
    assert!(
        line.contains(&denied.to_string()) && line.contains(&format!("deny :{}", denied.port())),
        "{line}"
    );

    // The association ends with its control connection: the relay answers no more.
    drop(control);
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut gone = false;
    for _ in 0..50 {
        client.send_to(&datagram(target, b"after"), relay).unwrap();
        if client.recv_from(&mut buf).is_err() {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "the relay still answers after the control connection closed"
    );
}
