//! `--key`: only clients holding the key get into the room.
use std::io::{Read, Write};
use std::net::TcpStream;

use super::common::{self, bin, run_program};
use super::{Client, WAIT, chat_server};

#[test]
fn with_a_key_only_authenticated_clients_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chat.key");
    let other = dir.path().join("other.key");
    for k in [&key, &other] {
        let (st, _, err) = common::run_with_input(&["keygen", k.to_str().unwrap()], b"", WAIT);
        assert!(st.success(), "{err}");
    }
    let key = key.to_str().unwrap();
    let server = chat_server(&["--key", key]);
    let addr = server.addr("chat", "tcp");
    let mut dora = Client::taojie(&addr, "dora", &["--key", key]);
    dora.wait_for("own rename", |l| l.ends_with("is now known as dora"));
    let mut ed = Client::taojie(&addr, "ed", &["--key", key]);
    ed.wait_for("own rename", |l| l.ends_with("is now known as ed"));

    // A plain line client: it gets the 32-byte challenge, its lines fail the check, and the
    // connection closes; it never reads or posts a chat line.
    let mut nc = TcpStream::connect(&addr).unwrap();
    nc.set_read_timeout(Some(WAIT)).unwrap();
    nc.write_all(b"/nick intruder\nhello from nc, anyone there?\n")
        .unwrap();
    dora.send("secret plans");
    ed.wait_line("<dora> secret plans");
    // The server closes it (an end of stream, or a reset as its lines go unread); a read
    // that times out is a connection left open.
    let mut got = Vec::new();
    match nc.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the unauthenticated connection was left open: {e}"),
    }
    assert!(got.len() <= 32, "unauthenticated client got {got:?}");

    // A taojie client with the wrong key is refused with a clear error.
    let (status, out, err) = run_program(
        bin(),
        &[
            "chat",
            &addr,
            "--name",
            "mallory",
            "--key",
            other.to_str().unwrap(),
        ],
        b"hi\n",
        WAIT,
    );
    assert!(!status.success());
    assert!(err.contains("authentication"), "{err}");
    assert!(!String::from_utf8_lossy(&out).contains("secret"));

    dora.send("/who");
    dora.wait_line("*** in lobby (2): dora, ed");
    assert!(
        !dora
            .seen
            .iter()
            .chain(&ed.seen)
            .any(|l| l.contains("intruder") || l.contains("nc,"))
    );
}
