//! Real clients through the proxy: curl's --socks5, --socks5-hostname and -x http:// (a
//! CONNECT tunnel, -p), with and without credentials, over IPv4 and IPv6; Python's PySocks.
use std::time::Duration;

use crate::common::{need, run_program};
use crate::{ALLOW_NGINX, HELLO, curl, hello_urls, nginx, proxy, users_file};

/// The curl flags for each way through a proxy at `proxy` (with `creds` as `user:pass@`).
fn modes(proxy: &str, creds: &str) -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "socks5",
            vec!["--proxy".into(), format!("socks5://{creds}{proxy}")],
        ),
        (
            "socks5h",
            vec!["--proxy".into(), format!("socks5h://{creds}{proxy}")],
        ),
        (
            "http",
            vec![
                "-p".into(),
                "--proxy".into(),
                format!("http://{creds}{proxy}"),
            ],
        ),
    ]
}

#[test]
fn curl_in_every_mode_over_ipv4_and_ipv6_reaches_nginx() {
    let n = nginx();
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let (mut server, addr) = proxy(listen, &ALLOW_NGINX);
        for url in hello_urls(&n) {
            for (mode, flags) in modes(&addr, "") {
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                let c = curl(&flags, &url);
                assert_eq!(
                    (c.code, c.body.as_str()),
                    (0, HELLO),
                    "{mode} via {addr} to {url}: {}",
                    c.stderr
                );
            }
        }
        // One log line per relayed connection, naming where it went; plain sockets both
        // sides, so the bytes went by splice(2), never through user space.
        let line = server.wait_stderr("relayed");
        assert!(line.contains("via=\"splice\""), "{line}");
        assert!(
            line.contains("target=") && line.contains("up=") && line.contains("down="),
            "{line}"
        );
    }
    assert_eq!(n.access_lines(18).len(), 18);
}

#[test]
fn credentials_are_checked_on_both_protocols() {
    let n = nginx();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.starts_with("ann:$argon2id$") && !text.contains("s3cret"),
        "{text}"
    );
    let (mut server, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    let url = n.url("/hello.txt");
    for (mode, flags) in modes(&addr, "ann:s3cret%20pass@") {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let c = curl(&flags, &url);
        assert_eq!(
            (c.code, c.body.as_str()),
            (0, HELLO),
            "{mode}: {}",
            c.stderr
        );
    }
    // A wrong password, and none at all: refused before anything reaches nginx.
    for creds in ["ann:wrong@", "eve:s3cret%20pass@", ""] {
        for (mode, flags) in modes(&addr, creds) {
            let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            flags.extend(["-o", "/dev/null", "-w", "%{http_connect}"]);
            let c = curl(&flags, &url);
            assert_ne!(c.code, 0, "{mode} with {creds:?} got through");
            if mode == "http" {
                assert_eq!(c.body, "407", "{mode} {creds:?}: {}", c.stderr);
            } else {
                // 97: the SOCKS handshake failed (login refused, or no method acceptable).
                assert_eq!(c.code, 97, "{mode} {creds:?}: {}", c.stderr);
            }
        }
    }
    server.wait_stderr("login refused");
    assert_eq!(
        n.access_lines(3).len(),
        3,
        "only the logged-in requests reached nginx"
    );
}

#[test]
fn pysocks_fetches_through_the_proxy_with_a_login() {
    if !need::python("socks") {
        return;
    }
    let n = nginx();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_server, addr) = proxy(
        "127.0.0.1:0",
        &[&ALLOW_NGINX[..], &["--users", &users]].concat(),
    );
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        r#"
import socks
for rdns in (True, False):
    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, "{host}", {port}, rdns=rdns, username="ann", password="s3cret pass")
    s.settimeout(10)
    s.connect(("localhost", {np}))
    s.sendall(b"GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b"\r\n\r\n", 1)[1].decode(), end="")
"#,
        np = n.port
    );
    let (status, out, err) = run_program("python3", &["-c", &script], b"", Duration::from_secs(30));
    assert!(status.success(), "PySocks (pip install PySocks): {err}");
    assert_eq!(String::from_utf8_lossy(&out), format!("{HELLO}{HELLO}"));
}

#[test]
fn taojie_http_takes_proxy_and_the_proxy_variables_as_curl_does() {
    let n = nginx();
    let (mut server, addr) = proxy("127.0.0.1:0", &["--allow", "localhost"]);
    let url = format!("http://localhost:{}/hello.txt", n.port);
    let http = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(crate::common::bin());
        cmd.arg("http").args(args).arg(&url);
        for v in [
            "ALL_PROXY",
            "all_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let socks = format!("socks5h://{addr}");
    let (ok, body, err) = http(&["--proxy", &socks], &[]);
    assert!(ok && body == HELLO, "{err}");
    server.wait_stderr(&format!("target=localhost:{} ", n.port));
    let (ok, body, err) = http(&[], &[("ALL_PROXY", &socks)]);
    assert!(ok && body == HELLO, "{err}");
    server.wait_stderr(&format!("target=localhost:{} ", n.port));
    // NO_PROXY sends it straight to nginx: the proxy relays nothing more.
    let (ok, body, err) = http(&[], &[("ALL_PROXY", &socks), ("NO_PROXY", "localhost")]);
    assert!(ok && body == HELLO, "{err}");
    // A proxy that refuses: one line, the password not in it.
    let (ok, _, err) = http(&["--proxy", &format!("socks5h://ann:hunter22@{addr}")], &[]);
    assert!(
        !ok && !err.contains("hunter22") && err.trim().lines().count() == 1,
        "{err}"
    );
    let lines = n.access_lines(3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    server.wait_stderr("login refused");
    let relayed = server
        .stderr
        .iter()
        .filter(|l| l.contains("relayed"))
        .count();
    assert_eq!(relayed, 2, "{:?}", server.stderr);
}

#[test]
fn pysocks_udp_associate_reaches_an_echo_server_and_denied_datagrams_go_nowhere() {
    if !need::python("socks") {
        return;
    }
    let echo =
        crate::common::Server::start(&["serve", "echo", "--udp", "127.0.0.1:0", "--upper"], 1);
    let target = echo.addr("echo", "udp");
    let (mut server, addr) = proxy(
        "127.0.0.1:0",
        &["--deny", "*.invalid", "--allow", "127.0.0.1"],
    );
    let (ph, pp) = addr.rsplit_once(':').unwrap();
    let (eh, ep) = target.rsplit_once(':').unwrap();
    let script = format!(
        r#"
import socket, socks
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, "{ph}", {pp})
s.settimeout(10)
for i in range(3):
    s.sendto(b"ping %d" % i, ("{eh}", {ep}))
    data, src = s.recvfrom(100)
    print(data.decode(), src[1] == {ep})
# A denied name: dropped (and logged); the next datagram still goes through.
s.sendto(b"nobody", ("db.invalid", 53))
s.sendto(b"last", ("{eh}", {ep}))
print(s.recvfrom(100)[0].decode())
"#
    );
    let (status, out, err) = run_program("python3", &["-c", &script], b"", Duration::from_secs(30));
    assert!(status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "PING 0 True\nPING 1 True\nPING 2 True\nLAST\n"
    );
    let line = server.wait_stderr("datagram denied");
    assert!(
        line.contains("db.invalid:53") && line.contains("deny *.invalid"),
        "{line}"
    );
}

#[test]
fn metrics_count_requests_per_user_and_outcome() {
    let n = nginx();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.args([
        "serve",
        "--metrics",
        "127.0.0.1:0",
        "proxy",
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--allow", "127.0.0.1", "--users", &users]);
    let server = crate::common::Server::spawn_capturing(cmd, 2);
    let (addr, metrics) = (server.addr("proxy", "tcp"), server.addr("metrics", "tcp"));
    let ok = curl(
        &["--proxy", &format!("socks5://ann:s3cret%20pass@{addr}")],
        &n.url("/hello.txt"),
    );
    assert_eq!(ok.body, HELLO, "{}", ok.stderr);
    let denied = curl(
        &["--proxy", &format!("socks5h://ann:s3cret%20pass@{addr}")],
        &n.url6("/hello.txt"),
    );
    assert_eq!(denied.code, 97);
    let wrong = curl(
        &["--proxy", &format!("socks5://ann:nope@{addr}")],
        &n.url("/hello.txt"),
    );
    assert_eq!(wrong.code, 97);
    let want = [
        r#"taojie_proxy_requests_total{service="proxy",user="ann",outcome="relayed"} 1"#,
        r#"taojie_proxy_requests_total{service="proxy",user="ann",outcome="destination denied"} 1"#,
        r#"taojie_proxy_requests_total{service="proxy",user="-",outcome="login refused"} 1"#,
        r#"taojie_proxy_bytes_total{service="proxy",user="ann",direction="down"}"#,
    ];
    // The relayed request is counted when its relay ends, just after curl has its answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = curl(&[], &format!("http://{metrics}/metrics")).body;
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics lack some of {want:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
