//! `taojie msg chat` as a user sees it on a terminal: `tests/peers/msg_chat_pty.py` runs it on
//! a pseudo-terminal through the pyte terminal emulator and checks the screen; these tests
//! start the `taojie msg listen --json` member it talks to (bob) and check what bob hears.
//! Each test owns 127.77.2N.0/24: bob is .1, the chat (ann) .2, other senders .3 and up, and
//! ann broadcasts to bob alone, so nothing leaves loopback.
use serde_json::Value;

use super::common::{bin, peer_script, run_program};
use super::{Member, WAIT};

/// Bob: `taojie msg listen --json` on `NET.1`, announcing itself to ann at `NET.2`.
fn bob(net: &str) -> Member {
    Member::listen(&[
        "--name",
        "bob",
        "--bind",
        &format!("{net}.1"),
        "--broadcast",
        &format!("{net}.2"),
    ])
}

/// Runs SCENARIO of `msg_chat_pty.py` on NET and fails the test with its screen unless it
/// says `ok`.
fn on_a_terminal(scenario: &str, net: &str) {
    let (status, out, err) = run_program(
        "python3",
        &[&peer_script("msg_chat_pty.py"), bin(), scenario, net],
        b"",
        WAIT * 4,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.trim_end() == "ok",
        "taojie msg chat on a terminal, scenario {scenario} (tests/peers/msg_chat_pty.py, \
         needs python3 with pyte):\n{out}{err}"
    );
}

/// Whether `e` is a message from ann at `NET.2` with text `text`.
fn from_ann(e: &Value, net: &str, text: &str) -> bool {
    e["event"] == "message"
        && e["nick"] == "ann"
        && e["addr"] == format!("{net}.2:2425")
        && e["text"] == text
}

#[test]
fn typed_lines_reach_bob_and_his_acknowledgements_show_under_them() {
    if !crate::common::need::python("pyte") {
        return;
    }
    let net = "127.77.20";
    let mut bob = bob(net);
    on_a_terminal("send", net);
    let entry = bob.wait_event("ann's entry", |e| {
        e["event"] == "entry" && e["nick"] == "ann"
    });
    assert_eq!(entry["addr"], format!("{net}.2:2425"));
    bob.wait_event("ann's line", |e| from_ann(e, net, "hello bob, 你好"));
    // `//etc` on the keyboard is the text `/etc`, not a command.
    bob.wait_event("ann's slash line", |e| from_ann(e, net, "/etc is a text"));
    // Ctrl-D ended the chat: it says so on the LAN.
    bob.wait_event("ann's exit", |e| e["event"] == "exit" && e["nick"] == "ann");
    let (status, events) = bob.stop();
    assert!(status.success());
    let lines = events.iter().filter(|e| e["event"] == "message").count();
    assert_eq!(lines, 2, "{events:#?}");
}

#[test]
fn a_message_to_ann_goes_above_the_line_she_is_typing() {
    if !crate::common::need::python("pyte") {
        return;
    }
    // No bob: cat (`taojie msg send` from .3) messages ann; her half-typed line stays whole.
    on_a_terminal("incoming", "127.77.21");
}

#[test]
fn who_lists_bob_and_escapes_from_the_network_never_reach_the_terminal() {
    if !crate::common::need::python("pyte") {
        return;
    }
    let net = "127.77.22";
    let mut bob = bob(net);
    on_a_terminal("hostile", net);
    bob.wait_event("ann's line after the forged datagrams", |e| {
        from_ann(e, net, "still here")
    });
}

#[test]
fn quit_restores_the_terminal_and_bob_sees_ann_leave() {
    if !crate::common::need::python("pyte") {
        return;
    }
    let net = "127.77.23";
    let mut bob = bob(net);
    on_a_terminal("quit", net);
    let exit = bob.wait_event("ann's exit", |e| e["event"] == "exit" && e["nick"] == "ann");
    assert_eq!(exit["addr"], format!("{net}.2:2425"));
    let (status, events) = bob.stop();
    assert!(status.success());
    assert!(
        !events.iter().any(|e| e["event"] == "message"),
        "/quit was sent as a message: {events:#?}"
    );
}
