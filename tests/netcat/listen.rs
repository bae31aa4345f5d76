//! `taojie listen`: one peer, IPv6 and Unix addresses, `--keep-open` over TCP and UDP, and
//! the half-close of a client that sends its request and its EOF at once.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Duration;

use super::common::{Proc, bin, run_with_input};
use super::{BULK, LIMIT, WAIT, random_bytes, start_listen};

#[test]
fn listen_and_connect_swap_8mib_both_ways_at_once() {
    let (mut lis, addr) = start_listen(&["127.0.0.1:0"]);
    let to_connect = random_bytes(BULK, 11);
    let to_listen = random_bytes(BULK, 13);
    lis.feed(to_connect.clone());
    let mut con = Proc::spawn(bin(), &["connect", &addr]);
    con.feed(to_listen.clone());
    con.wait_stdout(BULK, LIMIT);
    lis.wait_stdout(BULK, LIMIT);
    // connect's stdin EOF half-closes; listen sees the end, and its closing ends connect.
    let (c_status, c_out, c_err) = con.finish(LIMIT);
    let (l_status, l_out, l_err) = lis.finish(LIMIT);
    assert!(c_status.success(), "{c_err}");
    assert!(l_status.success(), "{l_err}");
    assert!(
        c_out == to_connect,
        "connect got {} changed bytes",
        c_out.len()
    );
    assert!(
        l_out == to_listen,
        "listen got {} changed bytes",
        l_out.len()
    );
}

#[test]
fn listen_on_ipv6_prints_its_address_on_stderr_only() {
    let (mut lis, addr) = start_listen(&["[::1]:0"]);
    assert!(
        addr.starts_with("[::1]:") && !addr.ends_with(":0"),
        "{addr}"
    );
    lis.feed(b"hi from listen".to_vec());
    lis.close_stdin();
    let (status, out, err) = run_with_input(&["connect", &addr], b"hi from connect", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hi from listen");
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(
        out, b"hi from connect",
        "stdout must carry only the peer's bytes"
    );
}

#[test]
fn listen_unix_serves_one_peer_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nc.sock");
    let p = path.to_str().unwrap();
    let (mut lis, addr) = start_listen(&["--unix", p]);
    assert_eq!(addr, p);
    assert!(path.exists());
    lis.close_stdin();
    let (status, out, err) = run_with_input(&["connect", "--unix", p], b"over unix", LIMIT);
    assert!(status.success(), "{err}");
    assert!(out.is_empty());
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"over unix");
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn listen_keep_open_serves_one_client_after_another() {
    let (mut lis, addr) = start_listen(&["127.0.0.1:0", "--keep-open"]);
    lis.feed(b"greeting".to_vec());
    lis.close_stdin();
    let talk = |msg: &[u8]| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(msg).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    };
    // stdin goes to the first client; after its EOF later clients are half-closed at once.
    assert_eq!(talk(b"one"), b"greeting");
    assert_eq!(talk(b"two"), b"");
    assert_eq!(lis.wait_stdout(6, WAIT), b"onetwo");
    assert!(
        lis.child.try_wait().unwrap().is_none(),
        "--keep-open must keep listening"
    );
}

#[test]
fn listen_udp_keep_open_answers_the_latest_sender() {
    let (mut lis, addr) = start_listen(&["-u", "127.0.0.1:0", "--keep-open"]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.send_to(b"a", &addr).unwrap();
    lis.wait_stdout(1, WAIT);
    b.send_to(b"b", &addr).unwrap();
    assert_eq!(lis.wait_stdout(2, WAIT), b"ab");
    lis.feed(b"to the latest".to_vec());
    b.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 100];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to the latest");
    a.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        a.recv(&mut buf).is_err(),
        "the earlier sender got the reply too"
    );
}

#[test]
fn half_close_from_a_plain_socket_still_gets_the_listeners_file() {
    // A client that sends its request and half-closes at once must still get the whole of
    // what the listener was given on stdin, not a cut-off copy.
    let (mut lis, addr) = start_listen(&["127.0.0.1:0"]);
    let file = random_bytes(2 << 20, 41);
    lis.feed(file.clone());
    lis.close_stdin();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got == file, "got {} of {} bytes", got.len(), file.len());
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"GET");
}
