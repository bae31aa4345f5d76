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

#[test]
fn unix_socket_echo_and_socket_file_removed_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let mut server = Server::start(&["serve", "echo", "--unix", path.to_str().unwrap()], 1);
    assert_eq!(server.addr("echo", "unix"), path.to_str().unwrap());
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"over unix").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over unix");
    assert!(server.terminate(Duration::from_secs(5)).unwrap().success());
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn ipv6_loopback_tcp_and_udp() {
    let server = Server::start(
        &["serve", "echo", "--listen", "[::1]:0", "--udp", "[::1]:0"],
        2,
    );
    let tcp = server.addr("echo", "tcp");
    assert!(tcp.starts_with("[::1]:"), "{tcp}");
    let mut s = TcpStream::connect(&tcp).unwrap();
    s.write_all(b"v6").unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"v6");
    let u = UdpSocket::bind("[::1]:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.send_to(b"", server.addr("echo", "udp")).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        u.recv(&mut buf).unwrap(),
        0,
        "an empty datagram echoes as an empty datagram"
    );
}

/// The seed's socketserver client (002) and UDP client (001), looped over several messages.
const SEED_CLIENTS: &str = r#"
import socket, sys
tcp_host, tcp_port = sys.argv[1].rsplit(':', 1)
udp_host, udp_port = sys.argv[2].rsplit(':', 1)
for data in ["hello", "socket 套接字 test", "x" * 5000]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect((tcp_host, int(tcp_port)))
        sock.sendall(bytes(data + "\n", "utf-8"))
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            chunk = sock.recv(1024)
            if not chunk:
                break
            received += chunk
    print("Received:", str(received, "utf-8").strip())
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(5)
ip_port = (udp_host, int(udp_port))
for msg in ["hello", "quit now"]:
    client.sendto(msg.encode('utf-8'), ip_port)
    data, server_addr = client.recvfrom(1024)
    print(data.decode('utf-8'))
"#;

#[test]
fn python_clients_written_like_the_seeds_get_upper_case_answers() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let server = Server::start(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--upper",
        ],
        2,
    );
    let (tcp, udp) = (server.addr("echo", "tcp"), server.addr("echo", "udp"));
    let (status, out, err) = common::run_program(
        "python3",
        &["-c", SEED_CLIENTS, &tcp, &udp],
        b"",
        Duration::from_secs(20),
    );
    assert!(status.success(), "python failed: {err}");
    let want = format!(
        "Received: HELLO\nReceived: SOCKET 套接字 TEST\nReceived: {}\nHELLO\nQUIT NOW\n",
        "X".repeat(5000)
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
}
