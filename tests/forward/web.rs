//! curl to nginx through `forward`: over TCP, into a Unix socket, and out of one.
use std::process::Command;

use crate::nginx::Nginx;
use crate::{addr, forward, need, random_bytes};

/// `curl -s URL` (and `extra` flags): the body, or a panic with curl's complaint.
pub(crate) fn curl(url: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "60"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// nginx serving `page.bin` (1 MiB of random bytes); returns it and the page.
pub(crate) fn nginx_with_page() -> (Nginx, Vec<u8>) {
    let nginx = Nginx::start();
    let page = random_bytes(1 << 20, 26);
    std::fs::write(nginx.www().join("page.bin"), &page).unwrap();
    (nginx, page)
}

#[test]
fn curl_gets_an_nginx_page_through_a_tcp_forward() {
    if !need("curl") || !need("nginx") {
        return;
    }
    let (nginx, page) = nginx_with_page();
    let mut fwd = forward(&["127.0.0.1:0", &format!("127.0.0.1:{}", nginx.port)]);
    let url = format!("http://{}/page.bin", addr(&fwd));
    // Twice in one curl run: a kept-alive connection carries both requests.
    let both = curl(&url, &["-o", "/dev/null", "-w", "%{num_connects}", &url]);
    assert!(!both.is_empty());
    assert!(curl(&url, &[]) == page);
    let line = fwd.wait_stderr("relayed");
    assert!(line.contains("via=\"splice\""), "{line}");
}

#[test]
fn curl_through_a_unix_socket_on_either_side() {
    if !need("curl") || !need("nginx") {
        return;
    }
    let (nginx, page) = nginx_with_page();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("web.sock");
    let sock_arg = format!("unix:{}", sock.display());
    // A Unix socket in front of nginx (as with docker.sock, the other way round)...
    let mut inner = forward(&[&sock_arg, &format!("127.0.0.1:{}", nginx.port)]);
    assert_eq!(inner.lines[0].1, "unix");
    assert!(
        curl(
            "http://x/page.bin",
            &["--unix-socket", sock.to_str().unwrap()]
        ) == page
    );
    // ...and a TCP port in front of that socket: a Unix target.
    let mut outer = forward(&["127.0.0.1:0", &sock_arg]);
    let url = format!("http://{}/page.bin", addr(&outer));
    assert!(curl(&url, &[]) == page);
    for fwd in [&mut inner, &mut outer] {
        let line = fwd.wait_stderr("relayed");
        assert!(line.contains("via=\"splice\""), "{line}");
    }
    // The socket file goes with the forward when it stops.
    assert!(inner.terminate(crate::WAIT).is_some_and(|s| s.success()));
    assert!(!sock.exists(), "{} left behind", sock.display());
}
