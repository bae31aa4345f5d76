//! Interop with real peers: `nc` (OpenBSD) and `ncat` on either side, and Python programs
//! written like the seeds' send/recv loops (scripts in `tests/peers/`).
use super::common::{Proc, bin, peer_script, run_program, run_with_input};
use super::{LIMIT, WAIT, hex, peer_line, peer_on_port, random_bytes, start_listen};

/// `taojie connect` to `PROGRAM -l 127.0.0.1 PORT`: a mebibyte each way.
fn connect_to_real_listener(program: &str) {
    if !crate::common::need::tool(program) {
        return;
    }
    let (mut peer, port) = peer_on_port(program, &["-l", "127.0.0.1"], false);
    let from_peer = random_bytes(1 << 20, 17);
    let from_taojie = random_bytes(1 << 20, 19);
    peer.feed(from_peer.clone());
    let mut con = Proc::spawn(bin(), &["connect", &format!("127.0.0.1:{port}")]);
    con.feed(from_taojie.clone());
    con.wait_stdout(from_peer.len(), LIMIT);
    peer.wait_stdout(from_taojie.len(), LIMIT);
    // Our stdin EOF half-closes; the peer then closes, which ends taojie with status 0.
    let (status, out, err) = con.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert!(out == from_peer, "bytes from {program} changed");
    let (_, peer_out, _) = peer.finish(LIMIT);
    assert!(peer_out == from_taojie, "bytes to {program} changed");
}

/// `PROGRAM ARGS 127.0.0.1 PORT` as the client of `taojie listen`: a mebibyte each way, and
/// the client's half-close ends the listener.
fn real_client_to_listen(program: &str, args: &[&str]) {
    if !crate::common::need::tool(program) {
        return;
    }
    let (mut lis, addr) = start_listen(&["127.0.0.1:0"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let from_taojie = random_bytes(1 << 20, 23);
    let from_peer = random_bytes(1 << 20, 29);
    lis.feed(from_taojie.clone());
    let mut full = args.to_vec();
    full.extend_from_slice(&[host, port]);
    let mut peer = Proc::spawn(program, &full);
    peer.feed(from_peer.clone());
    peer.wait_stdout(from_taojie.len(), LIMIT);
    lis.wait_stdout(from_peer.len(), LIMIT);
    let (_, peer_out, _) = peer.finish(LIMIT);
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert!(out == from_peer, "bytes from {program} changed");
    assert!(peer_out == from_taojie, "bytes to {program} changed");
}

#[test]
fn connect_to_nc_listener() {
    connect_to_real_listener("nc");
}

#[test]
fn connect_to_ncat_listener() {
    connect_to_real_listener("ncat");
}

#[test]
fn nc_client_to_listen() {
    real_client_to_listen("nc", &["-N"]);
}

#[test]
fn ncat_client_to_listen() {
    real_client_to_listen("ncat", &[]);
}

#[test]
fn ncat_send_only_to_listen() {
    if !crate::common::need::tool("ncat") {
        return;
    }
    let (lis, addr) = start_listen(&["127.0.0.1:0"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let data = random_bytes(1 << 20, 31);
    let (status, _, err) = run_program("ncat", &["--send-only", host, port], &data, LIMIT);
    assert!(status.success(), "{err}");
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert!(out == data, "bytes changed");
}

#[test]
fn udp_connect_to_ncat_listener() {
    if !crate::common::need::tool("ncat") {
        return;
    }
    let (mut peer, port) = peer_on_port("ncat", &["-u", "-l", "127.0.0.1"], true);
    peer.feed(b"pong from ncat".to_vec());
    let addr = format!("127.0.0.1:{port}");
    let args = ["connect", "-u", &addr, "--linger", "3"];
    let (status, out, err) = run_with_input(&args, b"ping from taojie", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"pong from ncat");
    assert_eq!(peer.wait_stdout(16, WAIT), b"ping from taojie");
}

#[test]
fn ncat_udp_client_to_listen_udp() {
    if !crate::common::need::tool("ncat") {
        return;
    }
    let (mut lis, addr) = start_listen(&["-u", "127.0.0.1:0"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    lis.feed(b"pong from taojie".to_vec());
    let mut peer = Proc::spawn("ncat", &["-u", host, port]);
    peer.feed(b"ping from ncat".to_vec());
    assert_eq!(lis.wait_stdout(14, WAIT), b"ping from ncat");
    assert_eq!(peer.wait_stdout(16, WAIT), b"pong from taojie");
    // UDP has no EOF: after stdin ends the listener leaves once the peer is quiet.
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"ping from ncat");
}

// ---- Python programs written like the seeds' loops ----

fn seed_server(script: &str, arg: &str) -> (Proc, String) {
    let mut p = Proc::spawn("python3", &[&peer_script(script), arg]);
    let port = peer_line(&mut p, "port ");
    (p, format!("127.0.0.1:{port}"))
}

#[test]
fn connect_to_seed_tcp_upper_server() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (server, addr) = seed_server("seed_tcp_server.py", "upper");
    let text = "你好, seed server\n".repeat(500);
    let (status, out, err) = run_with_input(&["connect", &addr], text.as_bytes(), LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, text.to_ascii_uppercase().as_bytes());
    let (_, py_out, _) = server.finish(LIMIT);
    assert!(String::from_utf8_lossy(&py_out).contains(&hex(text.as_bytes())));
}

#[test]
fn connect_gets_the_reply_sent_after_its_own_eof() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (server, addr) = seed_server("seed_tcp_server.py", "after-eof");
    let data = random_bytes(300_000, 37);
    let (status, out, err) = run_with_input(&["connect", &addr], &data, LIMIT);
    assert!(status.success(), "{err}");
    let mut want = b"after your eof: ".to_vec();
    want.extend_from_slice(&data.to_ascii_uppercase());
    assert!(out == want, "reply after half-close: {} bytes", out.len());
    drop(server);
}

#[test]
fn seed_tcp_client_talks_to_listen() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (mut lis, addr) = start_listen(&["127.0.0.1:0"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    lis.feed("reply from taojie 套接字".as_bytes().to_vec());
    lis.close_stdin();
    let script = peer_script("seed_tcp_client.py");
    let (status, out, err) = run_program("python3", &[&script, host, port, "hello"], b"", LIMIT);
    assert!(status.success(), "{err}");
    let want = format!("got {}", hex("reply from taojie 套接字".as_bytes()));
    assert_eq!(String::from_utf8_lossy(&out).trim(), want);
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hello");
}

#[test]
fn connect_udp_to_seed_udp_server() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (server, addr) = seed_server("seed_udp_server.py", "1");
    let args = ["connect", "-u", &addr, "--linger", "3"];
    let (status, out, err) = run_with_input(&args, b"hello udp seed", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"HELLO UDP SEED");
    let (_, py_out, _) = server.finish(LIMIT);
    assert!(String::from_utf8_lossy(&py_out).contains(&hex(b"hello udp seed")));
}

#[test]
fn seed_udp_client_talks_to_listen_udp() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let (mut lis, addr) = start_listen(&["-u", "127.0.0.1:0"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    lis.feed(b"PONG".to_vec());
    lis.close_stdin();
    let script = peer_script("seed_udp_client.py");
    let (status, out, err) = run_program("python3", &[&script, host, port, "ping"], b"", LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out).trim(),
        format!("got {}", hex(b"PONG"))
    );
    let (status, out, err) = lis.finish(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"ping");
}
