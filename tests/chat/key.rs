//! `--key`: only clients holding the key get into the room.
use std::io::{Read, Write};
use std::net::TcpStream;

use super::common::{self, bin, run_program};
use super::{Client, WAIT, chat_server, welcomed};

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
    dora.wait_for("own welcome", welcomed("dora"));
    let mut ed = Client::taojie(&addr, "ed", &["--key", key]);
    ed.wait_for("own welcome", welcomed("ed"));

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

/// A keyed member that is not taojie: `tests/peers/noise_line_client.py` speaks protocol 2
/// with another Noise library; it and a taojie member talk both ways, and it is told apart
/// from nothing else a member sees (a rename, a line, /who).
#[test]
fn an_independent_python_member_chats_with_the_key() {
    if !common::need::python("noise") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chat.key");
    let (st, _, err) = common::run_with_input(&["keygen", key.to_str().unwrap()], b"", WAIT);
    assert!(st.success(), "{err}");
    let key = key.to_str().unwrap();
    let server = chat_server(&["--key", key]);
    let addr = server.addr("chat", "tcp");
    let mut dora = Client::taojie(&addr, "dora", &["--key", key]);
    dora.wait_for("welcome as dora", welcomed("dora"));

    let mut cmd = std::process::Command::new("python3");
    cmd.arg(common::peer_script("noise_line_client.py"))
        .args([&addr, key]);
    let mut py = Client::spawn(cmd);
    py.send("/nick pyra");
    py.wait_for("its rename", |l| l.ends_with("is now known as pyra"));
    dora.wait_for("pyra's arrival", |l| l.ends_with("is now known as pyra"));
    py.send("hello from another implementation");
    dora.wait_line("<pyra> hello from another implementation");
    dora.send("hello pyra, 你好");
    py.wait_line("<dora> hello pyra, 你好");
    py.send("/who");
    py.wait_line("*** in lobby (2): dora, pyra");
    // The end of its input is the end-of-stream record: it leaves, and exits 0.
    drop(py.stdin.take());
    dora.wait_for("pyra leaving", |l| l.starts_with("*** pyra left lobby"));
    let status = common::wait_timeout(&mut py.child, WAIT).expect("the Python member exits");
    assert!(status.success(), "{status}");
}
