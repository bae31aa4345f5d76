//! Plain HTTP through the proxy (a request for an `http://` URL in absolute form, no CONNECT):
//! `curl -x http://` and `taojie http --proxy http://` to nginx, with and without a login,
//! refused destinations; what the target receives (origin form, no hop-by-hop or `Proxy-*`
//! fields, `Connection: close`); and a relay cut off by the idle timeout, still counted in
//! the per-user metrics.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Server, bin};
use crate::{ALLOW_NGINX, HELLO, curl, hello_urls, nginx, proxy, users_file};

/// `ann:s3cret pass` in Basic's base64.
const ANN_BASIC: &str = "YW5uOnMzY3JldCBwYXNz";

#[test]
fn curl_x_http_fetches_plain_http_urls_over_ipv4_and_ipv6() {
    let n = nginx();
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let (mut server, addr) = proxy(listen, &ALLOW_NGINX);
        for url in hello_urls(&n) {
            // No -p: curl sends `GET http://... HTTP/1.1` to the proxy itself.
            let c = curl(&["-x", &format!("http://{addr}")], &url);
            assert_eq!(
                (c.code, c.body.as_str()),
                (0, HELLO),
                "via {addr} to {url}: {}",
                c.stderr
            );
        }
        let line = server.wait_stderr("relayed");
        assert!(line.contains("target=") && line.contains("down="), "{line}");
    }
    assert_eq!(n.access_lines(6).len(), 6);
    // A destination the rules deny: 403, and nginx sees nothing more.
    let (mut server, addr) = proxy("127.0.0.1:0", &[]);
    let c = curl(
        &[
            "-x",
            &format!("http://{addr}"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ],
        &n.url("/hello.txt"),
    );
    assert_eq!(c.body, "403", "{}", c.stderr);
    server.wait_stderr("destination denied");
    assert_eq!(n.access_lines(6).len(), 6);
}

#[test]
fn plain_requests_need_the_login_and_taojie_http_sends_them() {
    let n = nginx();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (mut server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    let url = n.url("/hello.txt");
    let c = curl(&["-x", &format!("http://ann:s3cret%20pass@{addr}")], &url);
    assert_eq!((c.code, c.body.as_str()), (0, HELLO), "{}", c.stderr);
    for creds in ["ann:wrong@", ""] {
        let c = curl(
            &[
                "-x",
                &format!("http://{creds}{addr}"),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ],
            &url,
        );
        assert_eq!(c.body, "407", "{creds:?}: {}", c.stderr);
    }
    server.wait_stderr("login refused");
    // taojie http: an http:// URL through an http:// proxy is such a plain request too.
    let out = std::process::Command::new(bin())
        .args([
            "http",
            "--proxy",
            &format!("http://ann:s3cret%20pass@{addr}"),
            &url,
        ])
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), HELLO);
    assert_eq!(
        n.access_lines(2).len(),
        2,
        "only the logged-in requests reached nginx"
    );
}

/// A one-shot origin server: hands back the request it read (head and a 4-byte body) and
/// answers `ok`.
fn origin() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"\r\n\r\nbody") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        tx.send(String::from_utf8_lossy(&got).into_owned()).unwrap();
    });
    (port, rx)
}

#[test]
fn the_target_gets_origin_form_without_hop_by_hop_or_proxy_fields() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    let (port, got) = origin();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "POST http://127.0.0.1:{port}/p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
Proxy-Authorization: Basic {ANN_BASIC}\r\nProxy-Connection: keep-alive\r\n\
Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 30\r\nX-Keep: 2\r\n\
Content-Length: 4\r\n\r\nbody"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nok"),
        "{answer}"
    );
    let got = got.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        got,
        format!(
            "POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Keep: 2\r\nContent-Length: 4\r\n\
Via: 1.1 taojie\r\nConnection: close\r\n\r\nbody"
        )
    );
}

#[test]
fn a_relay_cut_off_by_the_idle_timeout_is_counted_for_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    // A target that accepts and never answers.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(bin());
    cmd.args([
        "serve",
        "--metrics",
        "127.0.0.1:0",
        "proxy",
        "--listen",
        "127.0.0.1:0",
    ])
    .args([
        "--allow",
        "127.0.0.1",
        "--users",
        &users,
        "--idle-timeout",
        "1",
    ]);
    let mut server = Server::spawn_capturing(cmd, 2);
    let (addr, metrics) = (server.addr("proxy", "tcp"), server.addr("metrics", "tcp"));
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let connect = format!(
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: Basic {ANN_BASIC}\r\n\r\n"
    );
    s.write_all(connect.as_bytes()).unwrap();
    let mut head = [0u8; 39];
    s.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let (_held, _) = target.accept().unwrap();
    s.write_all(b"hello").unwrap();
    // Nothing moves: the proxy closes the connection after a second.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let line = server.wait_stderr("idle timeout or shutdown");
    assert!(line.contains("up=5"), "{line}");
    let want = [
        r#"taojie_proxy_requests_total{service="proxy",user="ann",outcome="relayed"} 1"#,
        r#"taojie_proxy_bytes_total{service="proxy",user="ann",direction="up"} 5"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = curl(&[], &format!("http://{metrics}/metrics")).body;
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics lack some of {want:?}:\n{text}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
