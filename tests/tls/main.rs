//! TLS in netcat against real peers: `openssl s_server` and `ncat --ssl -l` as servers for
//! `taojie connect --tls`, `openssl s_client` and `ncat --ssl` as clients of `taojie listen
//! --tls-cert`/`--tls-self-signed`, with a test CA made in the test. Verified by default: an
//! expired certificate, a wrong host name and an unknown issuer are each refused with one
//! line naming the reason; `--pin` takes the pinned key and refuses another.
#[path = "../common/certs.rs"]
mod certs;
#[path = "../common/mod.rs"]
mod common;
mod peers;

use std::process::Command;
use std::time::Duration;

use certs::{Certs, Pair};
use common::{OutputWithin, Proc, bin, run_with_input};

/// Time limit for one process or one wait; generous because the machine may be busy.
const WAIT: Duration = Duration::from_secs(30);

/// Whether a program this test needs is here (`common::need`: under CI a missing one fails
/// the test; elsewhere the test is a counted SKIP and returns).
fn need(program: &str) -> bool {
    common::need::tool(program)
}

/// Starts `program` with `args(PORT)`, a server that must be told its port, on an unused
/// port, and waits until it and nothing else holds it (`common::ports`: no port is found free
/// and let go); on another port again when something else got there first.
fn peer_on_port(program: &str, args: impl Fn(&str) -> Vec<String>) -> (Proc, u16) {
    let mut why = Vec::new();
    for _ in 0..5 {
        let port = common::unused_port(false);
        let owned = args(&port.to_string());
        let argv: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut p = Proc::spawn(program, &argv);
        match common::ports::wait_held(&mut p.child, false, port, WAIT) {
            Ok(()) => return (p, port),
            Err(e) => why.push(e),
        }
    }
    panic!("{program} held no port of its own in 5 tries: {why:#?}");
}

/// A peer process that is killed (by its PID) when the test is done with it.
struct Peer(Proc);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// `openssl s_server` with `pair` on a port of its own, sending `greeting` once a client is in.
fn s_server(pair: &Pair, greeting: &[u8]) -> (Peer, u16) {
    let (cert, key) = (pair.cert.to_str().unwrap(), pair.key.to_str().unwrap());
    let (mut p, port) = peer_on_port("openssl", |port| {
        [
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            cert,
            "-key",
            key,
            "-quiet",
            "-naccept",
            "1",
            // Chosen only when a client offers it (`connect --alpn`).
            "-alpn",
            "http/1.1",
        ]
        .map(String::from)
        .to_vec()
    });
    p.feed(greeting.to_vec());
    (Peer(p), port)
}

/// `taojie connect ARGS` with `input`: (success, stdout, stderr).
fn connect(args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    let mut full = vec!["connect"];
    full.extend_from_slice(args);
    let (status, out, err) = run_with_input(&full, input, WAIT);
    (status.success(), out, err)
}

/// The key pin of a certificate as OpenSSL computes it (the recipe curl documents for
/// `--pinnedpubkey`): the SHA-256 of the DER public key, in base64.
fn openssl_pin(cert: &std::path::Path) -> String {
    let script = format!(
        "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | \
         openssl dgst -sha256 -binary | openssl base64 -A",
        cert.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output_within(WAIT)
        .unwrap();
    assert!(out.status.success());
    format!("sha256:{}", String::from_utf8(out.stdout).unwrap().trim())
}

/// Starts `taojie listen ARGS`; returns it and the address from its `listen tcp ADDR` line.
fn listen(args: &[&str]) -> (Proc, String) {
    let mut full = vec!["listen"];
    full.extend_from_slice(args);
    let mut p = Proc::spawn(bin(), &full);
    let line = p.wait_stderr("listen tcp ", WAIT);
    let addr = line.rsplit(' ').next().unwrap().to_string();
    (p, addr)
}

#[test]
fn connect_tls_talks_to_openssl_s_server_both_ways() {
    if !need("openssl") {
        return;
    }
    let certs = Certs::new();
    let (mut server, port) = s_server(&certs.good, b"from s_server\n");
    let addr = format!("localhost:{port}");
    let ca = certs.ca.to_str().unwrap();
    let (ok, out, err) = connect(
        &[
            &addr,
            "--tls",
            "--cacert",
            ca,
            "--alpn",
            "h2,http/1.1",
            "-v",
        ],
        b"from taojie\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out, b"from s_server\n");
    // -v: the version, the suite, the protocol the server chose of those offered, and the
    // certificate.
    assert!(err.contains("TLS 1.3, TLS13_"), "{err}");
    assert!(err.contains("ALPN http/1.1"), "{err}");
    assert!(err.contains("certificate valid until: "), "{err}");
    assert!(err.contains("certificate subject: CN=good"), "{err}");
    assert!(
        err.contains("certificate issuer: CN=taojie test CA"),
        "{err}"
    );
    assert!(err.contains("certificate SHA-256: "), "{err}");
    assert!(server.0.wait_stdout(12, WAIT).starts_with(b"from taojie\n"));
}

#[test]
fn expired_wrong_name_and_unknown_issuer_are_each_refused_with_the_reason() {
    if !need("openssl") {
        return;
    }
    let certs = Certs::new();
    let ca = certs.ca.to_str().unwrap();
    let cases = [
        (
            &certs.expired,
            "certificate expired: it was valid until 2021-01-01",
        ),
        (
            &certs.wrong_name,
            "wrong host name: the certificate is for other.test, not localhost",
        ),
        (
            &certs.unknown_issuer,
            "certificate issued by an unknown authority",
        ),
    ];
    for (pair, reason) in cases {
        let (_server, port) = s_server(pair, b"secret\n");
        let (ok, out, err) = connect(
            &[&format!("localhost:{port}"), "--tls", "--cacert", ca],
            b"x",
        );
        assert!(!ok, "{reason}: accepted");
        assert!(out.is_empty(), "{reason}: bytes came through");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(reason), "expected {reason:?}: {err}");
    }
    // Without --cacert the test CA is nobody's: the good certificate is refused too.
    let (_server, port) = s_server(&certs.good, b"secret\n");
    let (ok, _, err) = connect(&[&format!("localhost:{port}"), "--tls"], b"x");
    assert!(!ok && err.contains("unknown authority"), "{err}");
}

#[test]
fn a_pin_takes_the_pinned_key_and_refuses_another() {
    if !need("openssl") {
        return;
    }
    let certs = Certs::new();
    // Pinned, the rogue authority's certificate is taken: the pin names the server.
    let pin = openssl_pin(&certs.unknown_issuer.cert);
    let (_server, port) = s_server(&certs.unknown_issuer, b"pinned\n");
    let (ok, out, err) = connect(&[&format!("127.0.0.1:{port}"), "--tls", "--pin", &pin], b"");
    assert!(ok, "{err}");
    assert_eq!(out, b"pinned\n");
    // Another key is refused, saying whose key it was.
    let (_server, port) = s_server(&certs.good, b"not pinned\n");
    let (ok, out, err) = connect(&[&format!("127.0.0.1:{port}"), "--tls", "--pin", &pin], b"");
    assert!(!ok && out.is_empty());
    let good = openssl_pin(&certs.good.cert);
    assert!(
        err.contains(&format!("key is {good}, not the one pinned")),
        "{err}"
    );
    // --insecure takes anything, and says so.
    let (_server, port) = s_server(&certs.expired, b"anything\n");
    let (ok, out, err) = connect(&[&format!("127.0.0.1:{port}"), "--tls", "--insecure"], b"");
    assert!(ok, "{err}");
    assert_eq!(out, b"anything\n");
    assert!(err.contains("WARNING: --insecure"), "{err}");
}
