//! `taojie listen --tls-*` with `openssl s_client` and `ncat --ssl` as clients, `ncat --ssl
//! -l` as a server, and half-close through TLS between two taojies.

use crate::common::{Proc, bin};
use crate::{Certs, Peer, WAIT, connect, listen, need, peer_on_port};

#[test]
fn openssl_s_client_verifies_and_talks_to_listen_tls_cert() {
    if !need("openssl") {
        return;
    }
    let certs = Certs::new();
    let (cert, key) = (
        certs.good.cert.to_str().unwrap(),
        certs.good.key.to_str().unwrap(),
    );
    let (mut server, addr) = listen(&["127.0.0.1:0", "--tls-cert", cert, "--tls-key", key]);
    server.feed(b"from listen\n".to_vec());
    let mut client = Peer(Proc::spawn(
        "openssl",
        &[
            "s_client",
            "-connect",
            &addr,
            "-servername",
            "localhost",
            "-CAfile",
            certs.ca.to_str().unwrap(),
            "-verify_return_error",
            "-brief",
        ],
    ));
    client.0.feed(b"from s_client\n".to_vec());
    assert!(client.0.wait_stdout(12, WAIT).ends_with(b"from listen\n"));
    client.0.wait_stderr("Verification: OK", WAIT);
    // s_client ends the whole session when the server's close_notify comes, so the server's
    // side closes only once the client's line is in.
    assert_eq!(server.wait_stdout(14, WAIT), b"from s_client\n");
    client.0.close_stdin();
    let (status, out, err) = server.finish(WAIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"from s_client\n");
}

#[test]
fn ncat_ssl_both_ways() {
    if !need("ncat") {
        return;
    }
    let certs = Certs::new();
    let (cert, key) = (
        certs.good.cert.to_str().unwrap(),
        certs.good.key.to_str().unwrap(),
    );
    let ca = certs.ca.to_str().unwrap();
    // ncat --ssl -l as the server, taojie connect --tls verifying it.
    let (ncat, port) = peer_on_port("ncat", |port| {
        [
            "--ssl",
            "--ssl-cert",
            cert,
            "--ssl-key",
            key,
            "-l",
            "127.0.0.1",
            port,
        ]
        .map(String::from)
        .to_vec()
    });
    let mut ncat = Peer(ncat);
    ncat.0.feed(b"from ncat -l\n".to_vec());
    let (ok, out, err) = connect(
        &[&format!("localhost:{port}"), "--tls", "--cacert", ca],
        b"hi ncat\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out, b"from ncat -l\n");
    assert!(ncat.0.wait_stdout(8, WAIT).starts_with(b"hi ncat\n"));

    // ncat --ssl verifying taojie listen --tls-cert.
    let (mut server, addr) = listen(&["127.0.0.1:0", "--tls-cert", cert, "--tls-key", key]);
    server.feed(b"from taojie listen\n".to_vec());
    let port = addr.rsplit(':').next().unwrap();
    let mut client = Peer(Proc::spawn(
        "ncat",
        &[
            "--ssl",
            "--ssl-verify",
            "--ssl-trustfile",
            ca,
            "localhost",
            port,
        ],
    ));
    client.0.feed(b"from ncat\n".to_vec());
    assert!(
        client
            .0
            .wait_stdout(19, WAIT)
            .starts_with(b"from taojie listen\n")
    );
    // ncat, too, ends when the server's side closes: that waits for the client's line.
    assert_eq!(server.wait_stdout(10, WAIT), b"from ncat\n");
    client.0.close_stdin();
    let (status, out, err) = server.finish(WAIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"from ncat\n");

    // ncat --ssl (which checks nothing by default) to a made certificate.
    let (mut server, addr) = listen(&["127.0.0.1:0", "--tls-self-signed"]);
    server.wait_stderr("taojie: TLS certificate made for this run", WAIT);
    server.feed(b"self-signed\n".to_vec());
    let port = addr.rsplit(':').next().unwrap();
    let mut client = Peer(Proc::spawn("ncat", &["--ssl", "127.0.0.1", port]));
    client.0.feed(b"anyone\n".to_vec());
    assert!(client.0.wait_stdout(12, WAIT).starts_with(b"self-signed\n"));
    assert_eq!(server.wait_stdout(7, WAIT), b"anyone\n");
    client.0.close_stdin();
    let (status, out, _) = server.finish(WAIT);
    assert!(status.success());
    assert_eq!(out, b"anyone\n");
}

#[test]
fn half_close_through_tls_between_two_taojies_with_a_pinned_made_certificate() {
    let (mut server, addr) = listen(&["127.0.0.1:0", "--tls-self-signed"]);
    let made = server.wait_stderr("taojie: TLS certificate made for this run", WAIT);
    let pin = made
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("a pin on the line")
        .to_string();
    // The client sends 1 MiB and its end (close_notify, FIN); the listener gets it all, and
    // only then answers, on the direction still open.
    let payload: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 4099) as u8).collect();
    let mut client = Proc::spawn(bin(), &["connect", &addr, "--tls", "--pin", &pin]);
    client.feed(payload.clone());
    client.close_stdin();
    assert!(server.wait_stdout(payload.len(), WAIT) == payload);
    server.feed(b"got it all\n".to_vec());
    let (status, out, err) = client.finish(WAIT);
    assert!(status.success(), "{err}");
    assert_eq!(out, b"got it all\n");
    assert!(!err.contains("close_notify"), "a clean TLS end: {err}");
    let (status, _, err) = server.finish(WAIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("close_notify"), "a clean TLS end: {err}");
}
