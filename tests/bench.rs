//! `taojie bench` against taojie's echo server and a foreign one, and its verification.
mod common;

use std::time::Duration;

use common::{Server, run_with_input};

fn bench_json(args: &[&str]) -> (bool, serde_json::Value) {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--seconds", "0.5", "--json"]);
    let (status, out, err) = run_with_input(&full, b"", Duration::from_secs(30));
    assert!(!err.contains("panicked"), "{err}");
    let v = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("bad json ({e}): {err}"));
    (status.success(), v)
}

#[test]
fn verifies_tcp_and_udp_echo_and_reports_figures() {
    let server = Server::start(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
        ],
        2,
    );
    let tcp = server.addr("echo", "tcp");
    let (ok, v) = bench_json(&[&tcp, "--conns", "4", "--depth", "8", "--size", "1000"]);
    assert!(ok, "{v}");
    assert!(v["requests"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["lost"], 0);
    for key in [
        "requests_per_sec",
        "mb_per_sec",
        "p50_us",
        "p99_us",
        "p999_us",
        "cpu_percent",
    ] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key} in {v}");
    }
    assert!(v["p50_us"].as_f64() <= v["p99_us"].as_f64());
    let (ok, v) = bench_json(&[
        &server.addr("echo", "udp"),
        "--udp",
        "--conns",
        "2",
        "--depth",
        "4",
    ]);
    assert!(ok, "{v}");
    assert_eq!(v["proto"], "udp");
    assert_eq!(v["errors"], 0);
}

#[test]
fn a_server_that_does_not_upper_case_fails_upper_verification() {
    let server = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let (ok, v) = bench_json(&[&server.addr("echo", "tcp"), "--upper"]);
    assert!(!ok, "verification passed on wrong answers: {v}");
    assert!(v["errors"].as_u64().unwrap() > 0);
    assert_eq!(v["requests"], 0);
}

#[test]
fn works_against_a_foreign_upper_case_echo_server() {
    if !crate::common::need::tool("python3") {
        return;
    }
    // A thread-per-connection upper-case server in the seeds' style, on port 0.
    let script = r#"
import socket, threading, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(64)
print('%s:%d' % srv.getsockname(), flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d.upper())
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::kill_after(
        &child,
        std::time::Duration::from_secs(120),
        "the Python echo server",
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let (ok, v) = bench_json(&[line.trim(), "--upper", "--conns", "3", "--depth", "2"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{v}");
    assert!(v["requests"].as_u64().unwrap() > 0);
}

#[test]
fn nothing_listening_is_one_clear_error() {
    // Bound and never listening: refused, and no other test can take the port meanwhile.
    let (_hold, addr) = common::ports::refused_tcp();
    let (status, _, err) =
        run_with_input(&["bench", &addr.to_string()], b"", Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        err.contains("cannot connect") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn bad_flags_are_refused() {
    let (status, _, err) = run_with_input(
        &["bench", "127.0.0.1:9", "--udp", "--size", "4"],
        b"",
        Duration::from_secs(10),
    );
    assert!(!status.success());
    assert!(err.contains("--size"), "{err}");
}

#[test]
fn a_port_that_does_not_echo_is_said_so_and_fails() {
    // A server that takes the bytes and answers nothing (a discard server), on port 0.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
            });
        }
    });
    let (status, out, err) = run_with_input(
        &["bench", &addr, "--seconds", "0.5"],
        b"",
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&out);
    assert!(!status.success(), "{out}");
    assert!(!out.contains("byte for byte"), "{out}");
    assert!(
        out.contains("verified   NO answer came back: the server did not echo"),
        "{out}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "taojie: error: {addr} (tcp) did not echo: no answer came back in "
        )) && err.trim_end().ends_with("is it an echo server?"),
        "{err}"
    );
    // And the same failure from --json, whose report says 0 requests.
    let (ok, v) = bench_json(&[&addr]);
    assert!(!ok);
    assert_eq!(v["requests"], 0);
    assert_eq!(v["errors"], 0);
}
