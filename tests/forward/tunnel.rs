//! Two-hop tunnels: curl → forward (--to-key / --to-tls) → a capturing proxy → forward
//! (--from-key / --from-tls-cert) → nginx. The page arrives whole, and the proxy between the
//! tunnel's ends sees none of it in plaintext, nor the request. And tunnels with identity
//! keys, and with a certificate made at start trusted by its printed pin.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::certs::Certs;
use crate::common::OutputWithin;
use crate::web::{curl, nginx_with_page};
use crate::{addr, clients_through, forward, need, reverser};

/// A TCP proxy to `target` that keeps a copy of every byte it carries, both ways.
struct Capture {
    addr: String,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Capture {
    fn start(target: String) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let keep = keep.clone();
                    thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            keep.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Capture { addr, seen }
    }

    /// Whether `needle` appears anywhere in what the proxy carried.
    fn saw(&self, needle: &[u8]) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.windows(needle.len()).any(|w| w == needle)
    }

    fn carried(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Checks the capture saw traffic but none of the page or the request in the clear.
fn assert_opaque(capture: &Capture, page: &[u8]) {
    assert!(capture.carried() > page.len(), "the page went another way");
    for sample in [
        &page[..32],
        &page[500_000..500_032],
        &page[page.len() - 32..],
    ] {
        assert!(
            !capture.saw(sample),
            "plaintext of the page between the tunnel's ends"
        );
    }
    assert!(!capture.saw(b"GET /page.bin"), "the request in plaintext");
    assert!(!capture.saw(b"HTTP/1.1"), "HTTP in plaintext");
}

#[test]
fn curl_through_a_noise_tunnel_and_the_middle_sees_no_plaintext() {
    if !need("curl") || !need("nginx") {
        return;
    }
    let (nginx, page) = nginx_with_page();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let made = crate::common::command(crate::bin())
        .args(["keygen", key.to_str().unwrap()])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(made.status.success());
    let key = key.to_str().unwrap();
    let nginx_addr = format!("127.0.0.1:{}", nginx.port);
    let mut server = forward(&["127.0.0.1:0", &nginx_addr, "--from-key", key]);
    let capture = Capture::start(addr(&server));
    let mut laptop = forward(&["127.0.0.1:0", &capture.addr, "--to-key", key]);
    let url = format!("http://{}/page.bin", addr(&laptop));
    assert!(curl(&url, &[]) == page);
    assert_opaque(&capture, &page);
    for fwd in [&mut server, &mut laptop] {
        let line = fwd.wait_stderr("relayed");
        assert!(line.contains("via=\"copy\""), "{line}");
    }

    // Half-close and integrity through the tunnel, 50 clients at once. Fifty handshakes of
    // the debug build beside the thousand-client tests took more than the default 5 s once
    // on a loaded machine (the laptop side reset its clients); this part is about the bytes,
    // so the handshakes get a minute.
    let target = reverser();
    let slow = ["--handshake-timeout", "60", "--connect-timeout", "60"];
    let server = forward(&[&["127.0.0.1:0", &target, "--from-key", key][..], &slow].concat());
    let laptop = forward(&[&["127.0.0.1:0", &addr(&server), "--to-key", key][..], &slow].concat());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clients_through(&addr(&laptop), 50, |i| 1 + i * 9_000));

    // Another key gets nothing through: the server side refuses the handshake.
    let other = dir.path().join("other");
    crate::common::command(crate::bin())
        .args(["keygen", other.to_str().unwrap()])
        .output_within(crate::WAIT)
        .unwrap();
    let mut server = forward(&["127.0.0.1:0", &nginx_addr, "--from-key", key]);
    let mut wrong = forward(&[
        "127.0.0.1:0",
        &addr(&server),
        "--to-key",
        other.to_str().unwrap(),
    ]);
    let refused = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            &format!("http://{}/page.bin", addr(&wrong)),
        ])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    server.wait_stderr("handshake refused");
    let line = wrong.wait_stderr("not relayed");
    assert!(line.contains("key"), "{line}");
}

#[test]
fn curl_through_a_tls_tunnel_and_the_middle_sees_no_plaintext() {
    if !need("curl") || !need("nginx") {
        return;
    }
    let certs = Certs::new();
    let (nginx, page) = nginx_with_page();
    let nginx_addr = format!("127.0.0.1:{}", nginx.port);
    let (cert, key) = (
        certs.good.cert.to_str().unwrap(),
        certs.good.key.to_str().unwrap(),
    );
    let mut server = forward(&[
        "127.0.0.1:0",
        &nginx_addr,
        "--from-tls-cert",
        cert,
        "--from-tls-key",
        key,
    ]);
    let capture = Capture::start(addr(&server));
    let ca = certs.ca.to_str().unwrap();
    // The capture's address is not the certificate's, so the name to check is given.
    let mut laptop = forward(&[
        "127.0.0.1:0",
        &capture.addr,
        "--to-tls",
        "--to-cacert",
        ca,
        "--to-sni",
        "localhost",
    ]);
    let url = format!("http://{}/page.bin", addr(&laptop));
    assert!(curl(&url, &[]) == page);
    assert_opaque(&capture, &page);
    for fwd in [&mut server, &mut laptop] {
        let line = fwd.wait_stderr("relayed");
        assert!(line.contains("via=\"copy\""), "{line}");
    }
    // curl speaks TLS to the server side itself, trusting the test CA.
    let direct = format!(
        "https://localhost:{}/page.bin",
        addr(&server).rsplit(':').next().unwrap()
    );
    assert!(curl(&direct, &["--cacert", ca]) == page);

    // A target whose certificate is not trusted is not relayed to, with the reason.
    let mut untrusted = forward(&["127.0.0.1:0", &addr(&server), "--to-tls"]);
    let refused = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            &format!("http://{}/", addr(&untrusted)),
        ])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(!refused.status.success());
    let line = untrusted.wait_stderr("not relayed");
    assert!(line.contains("unknown authority"), "{line}");
}

/// Starts `taojie forward ARGS` with `env` set, waiting for its `forward` line.
fn forward_with_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> crate::common::Server {
    let mut cmd = crate::common::command(crate::bin());
    cmd.arg("forward").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::common::Server::spawn_capturing(cmd, 1)
}

#[test]
fn identity_keys_make_a_tunnel_and_a_key_not_authorized_gets_nothing_through() {
    let dir = tempfile::tempdir().unwrap();
    let keygen = |name: &str| {
        let path = dir.path().join(name);
        let made = crate::common::command(crate::bin())
            .args(["keygen", "--identity", path.to_str().unwrap()])
            .output_within(crate::WAIT)
            .unwrap();
        assert!(made.status.success());
        path
    };
    let (server_id, laptop_id, stranger_id) = (keygen("server"), keygen("laptop"), keygen("x"));
    let authorized = dir.path().join("authorized");
    std::fs::copy(laptop_id.with_extension("pub"), &authorized).unwrap();
    // known_hosts (the server's key, pinned on first contact) in a home of the test's own.
    let home = dir.path().join("config");
    let env = [("XDG_CONFIG_HOME", home.as_path())];
    let target = reverser();
    let server = forward(&[
        "127.0.0.1:0",
        &target,
        "--from-identity",
        server_id.to_str().unwrap(),
        "--from-authorized",
        authorized.to_str().unwrap(),
    ]);
    let laptop = forward_with_env(
        &[
            "127.0.0.1:0",
            &addr(&server),
            "--to-identity",
            laptop_id.to_str().unwrap(),
        ],
        &env,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clients_through(&addr(&laptop), 20, |i| 1 + i * 7_000));
    let known = std::fs::read_to_string(home.join("taojie/known_hosts")).unwrap();
    let server_pub = std::fs::read_to_string(server_id.with_extension("pub")).unwrap();
    let server_key = server_pub.split_whitespace().nth(1).unwrap();
    assert!(known.contains(server_key), "{known}");

    // A key the server does not list is refused at the handshake: no byte of the target's.
    let mut stranger = forward_with_env(
        &[
            "127.0.0.1:0",
            &addr(&server),
            "--to-identity",
            stranger_id.to_str().unwrap(),
        ],
        &env,
    );
    let mut c = TcpStream::connect(addr(&stranger)).unwrap();
    c.write_all(b"let me in").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    c.set_read_timeout(Some(crate::WAIT)).unwrap();
    let mut back = Vec::new();
    let _ = c.read_to_end(&mut back);
    assert!(back.is_empty(), "bytes through an unauthorized key");
    let line = stranger.wait_stderr("not relayed");
    assert!(line.contains("not in its authorized keys"), "{line}");
}

#[test]
fn a_certificate_made_at_start_is_trusted_by_its_printed_pin_and_no_other() {
    let target = reverser();
    let mut server = forward(&["127.0.0.1:0", &target, "--from-tls-self-signed"]);
    let said = server.wait_stderr("TLS certificate made for this run");
    let pin = said
        .split_whitespace()
        .skip_while(|w| *w != "--pin")
        .nth(1)
        .unwrap()
        .to_string();
    assert!(pin.starts_with("sha256:"), "{said}");
    let laptop = forward(&["127.0.0.1:0", &addr(&server), "--to-tls", "--to-pin", &pin]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(clients_through(&addr(&laptop), 20, |i| 1 + i * 7_000));

    // Another pin: refused, naming the key the server has.
    let other = format!("sha256:{}", "A".repeat(43) + "=");
    let mut wrong = forward(&[
        "127.0.0.1:0",
        &addr(&server),
        "--to-tls",
        "--to-pin",
        &other,
    ]);
    let mut c = TcpStream::connect(addr(&wrong)).unwrap();
    c.set_read_timeout(Some(crate::WAIT)).unwrap();
    let mut back = Vec::new();
    let _ = c.read_to_end(&mut back);
    assert!(back.is_empty());
    let line = wrong.wait_stderr("not relayed");
    assert!(line.contains(&format!("key is {pin}")), "{line}");
}
