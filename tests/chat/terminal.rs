//! The client on a terminal and on a pipe: the line editor seen through a terminal emulator
//! (`tests/peers/chat_pty.py` runs `taojie chat` on pseudo-terminals), and plain output with
//! no escape sequences when stdout is a pipe.
use super::common::{self, bin, peer_script, run_program};
use super::{Client, WAIT, chat_server, chat_server_at, welcomed};

#[test]
fn on_a_terminal_incoming_lines_go_above_the_line_being_typed() {
    if !crate::common::need::python("pyte") {
        return;
    }
    let server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let (status, out, err) = run_program(
        "python3",
        &[&peer_script("chat_pty.py"), bin(), &addr],
        b"",
        WAIT * 4,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.trim_end() == "ok",
        "taojie chat on a terminal (tests/peers/chat_pty.py, needs python3 with pyte):\n{out}{err}"
    );
}

#[test]
fn on_a_pipe_lines_are_plain_text() {
    if !crate::common::need::tool("nc") {
        return;
    }
    let server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let mut dora = Client::taojie(&addr, "dora", &[]);
    dora.wait_for("own welcome", welcomed("dora"));
    let mut bob = Client::nc(&addr);
    bob.send("/nick bob");
    dora.wait_for("bob's name", |l| l.ends_with("is now known as bob"));
    bob.send("hi dora");
    bob.send("/me waves");
    dora.send("hi bob");
    bob.wait_line("<dora> hi bob");
    dora.wait_line("<bob> hi dora");
    dora.wait_line("* bob waves");
    drop(dora.stdin.take());
    bob.wait_line("*** dora left lobby (disconnected)");
    assert!(
        dora.seen.iter().all(|l| !l.chars().any(char::is_control)),
        "escape or control characters on a pipe: {:#?}",
        dora.seen
    );
    // Its own lines are not echoed on a pipe (the script that wrote them has them).
    assert!(
        !dora.seen.iter().any(|l| l.contains("hi bob")),
        "{:#?}",
        dora.seen
    );
}

#[test]
fn when_its_only_broker_stops_the_client_comes_back_under_its_name_in_its_room() {
    let mut server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let mut dora = Client::taojie(&addr, "dora", &[]);
    dora.wait_for("own welcome", welcomed("dora"));
    dora.send("/join dev");
    dora.wait_line("*** dora joined dev");
    server.terminate(WAIT).expect("the broker stops on SIGTERM");
    dora.wait_for("word of the loss", |l| {
        l == format!("*** lost the broker at {addr}; reconnecting")
    });
    // The broker comes back on the same address; the client finds it by itself.
    let _again = chat_server_at(&addr);
    dora.wait_for("word of the reconnection", |l| {
        l == format!("*** reconnected to {addr}; rejoining as dora")
    });
    dora.wait_for("the welcome back, in its room", |l| {
        l.starts_with("*** welcome, you are dora in dev;")
    });
    let mut bob = Client::nc(&addr);
    bob.send("/hello bob dev");
    bob.wait_for("own welcome", welcomed("bob"));
    dora.wait_line("*** bob joined dev");
    dora.send("back again");
    bob.wait_line("<dora> back again");
    // The end of its input still ends it.
    drop(dora.stdin.take());
    let status = common::wait_timeout(&mut dora.child, WAIT).expect("the client exits");
    assert!(status.success(), "{status:?}");
}
