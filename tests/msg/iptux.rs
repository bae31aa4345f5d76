//! The real iptux (Debian's 0.8.3, a GTK program), headless under Xvfb in a network namespace
//! of this test's own that has only loopback: `tests/peers/ipmsg_lab.sh` brings it up on
//! 127.0.0.2:2425 and types and sends a message in its chat window (xdotool). taojie members
//! run in the same namespace on 127.0.0.1 and 127.0.0.3, port 2425 (iptux answers to that port
//! only), and announce themselves to iptux alone (`--broadcast 127.0.0.2`).
//!
//! What iptux shows is read from its chat log, `~/.config/iptux/log/communicate.log`: iptux
//! writes there, with one write(2) as it takes each message in, the text it decoded (the
//! string its chat window shows) under the sender's nickname as it decoded our entry. An
//! acknowledgement alone proves little: iptux acknowledges a message before it checks the
//! packet number, and drops the text of a number it takes for old. Its DEBUG log has only the
//! raw bytes, and a screenshot would need CJK text recognition; the chat log is iptux's own
//! word for what it understood. The DEBUG log serves to count datagrams: how often iptux sent
//! its message and how often we acknowledged it.
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{bin, need, peer_script, run_program};
use super::{Member, WAIT};

/// iptux's address in the lab.
const IPTUX: &str = "127.0.0.2";
/// iptux's socket: members send to it and it answers from it.
const IPTUX_ADDR: &str = "127.0.0.2:2425";
/// The text iptux sends: xdotool types the Chinese characters too.
const FROM_IPTUX: &str = "hello from iptux 你好";

#[test]
fn iptux_lists_us_shows_our_utf8_and_gbk_texts_and_its_own_reaches_us_once() {
    let started = Instant::now();
    let Some(lab) = IptuxLab::up() else {
        return;
    };
    let up = started.elapsed();

    // 1. Our entry reaches iptux and its answer reaches us.
    let (ok, out, err) = lab.taojie(&[
        "msg",
        "who",
        "--name",
        "taojie-who",
        "--bind",
        "127.0.0.1",
        "--broadcast",
        IPTUX,
        "--json",
    ]);
    assert!(ok, "msg who: {err}");
    let iptux = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["version"].as_str().is_some_and(|v| v.contains("iptux")))
        .unwrap_or_else(|| panic!("iptux not in msg who: {out}{err}"));
    assert_eq!(iptux["addr"], IPTUX_ADDR, "{iptux}");
    assert_eq!(iptux["encoding"], "utf8", "iptux declares utf-8: {iptux}");

    // 2. A UTF-8 member and a GBK member send to iptux. Each member's entry is in its own
    // encoding and names it; the texts travel in UTF-8, the encoding iptux declares. iptux shows
    // the nickname it decoded from the entry next to the text.
    for (name, encoding, bind, text, name_on_wire, label) in [
        (
            "淘杰",
            "utf8",
            "127.0.0.1",
            "你好 from taojie, UTF-8",
            "淘杰".as_bytes(),
            "utf-8",
        ),
        (
            "飞秋淘杰",
            "gbk",
            "127.0.0.3",
            "你好 from taojie, GBK",
            b"\xb7\xc9\xc7\xef\xcc\xd4\xbd\xdc".as_slice(),
            "gbk",
        ),
    ] {
        let (ok, _, err) = lab.taojie(&[
            "msg",
            "send",
            "--name",
            name,
            "--encoding",
            encoding,
            "--bind",
            bind,
            "--broadcast",
            IPTUX,
            IPTUX,
            text,
        ]);
        assert!(
            ok && err.contains("acknowledged by ") && err.contains(&format!("({IPTUX_ADDR})")),
            "{encoding} member: {err}"
        );
        lab.wait_logged("Recevied-From", name, text);
        let from = format!("{bind}:2425");
        let tail = format!("\0{label}\0");
        assert!(
            lab.datagrams().iter().any(|d| !d.sent
                && d.peer == from
                && d.fields()
                    .is_some_and(|(_, command, _)| command & 0xff == 1)
                && d.bytes
                    .windows(name_on_wire.len())
                    .any(|w| w == name_on_wire)
                && d.bytes.ends_with(tail.as_bytes())),
            "iptux got no entry from {from} with {name:?} in {encoding}"
        );
    }
    let sent = started.elapsed();

    // 3. iptux's own message reaches a listener once. The listener is stopped (SIGSTOP) while
    // iptux sends, so iptux re-sends it unacknowledged; resumed, the listener reads every copy.
    // A name of its own: iptux's log then shows its message went to the listener, the only
    // pal it lists by now (each `msg send` above ended with BR_EXIT).
    let mut listener = lab.listen(&[
        "--name",
        "淘杰听",
        "--bind",
        "127.0.0.1",
        "--broadcast",
        IPTUX,
    ]);
    listener.wait_event("iptux's answer to the listener", |e| {
        e["event"] == "entry" && e["version"].as_str().is_some_and(|v| v.contains("iptux"))
    });
    signal(&listener, libc::SIGSTOP);
    let (ok, out) = lab.script(&["say", FROM_IPTUX]);
    if !ok {
        signal(&listener, libc::SIGCONT);
        panic!("ipmsg_lab.sh say: {out}");
    }
    // What was typed, and to whom: iptux logs what it sends as it sends it.
    lab.wait_logged("Send-To", "淘杰听", FROM_IPTUX);
    let copies = wait_for("iptux to send its message twice", || {
        let copies = lab.copies_of(FROM_IPTUX);
        (copies.len() >= 2).then_some(copies)
    });
    signal(&listener, libc::SIGCONT);
    let number = copies[0];
    assert!(copies.iter().all(|n| *n == number), "{copies:?}");
    let m = listener.wait_message(FROM_IPTUX);
    assert_eq!(m["addr"], IPTUX_ADDR, "{m}");
    assert_eq!(m["packet"], number, "{m}");
    assert!(
        m["version"].as_str().is_some_and(|v| v.contains("iptux")),
        "{m}"
    );
    // Every copy iptux sent (it may send another before the first acknowledgement lands) is
    // acknowledged: the listener has read them all.
    let (copies, acks) = wait_for("an acknowledgement of every copy", || {
        let (copies, acks) = (lab.copies_of(FROM_IPTUX).len(), lab.acks_of(number));
        (acks >= copies).then_some((copies, acks))
    });
    // The listener acknowledges a copy just before it would print it: give a copy shown twice
    // 300 ms to appear.
    let quiet_by = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_by && listener.proc.more_stdout(Duration::from_millis(300)) {}
    let (status, events) = listener.stop();
    assert!(status.success());
    let shown: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "message" && e["text"] == FROM_IPTUX)
        .collect();
    assert_eq!(
        shown.len(),
        1,
        "iptux sent {copies} copies, {acks} acknowledged: {events:#?}"
    );
    eprintln!(
        "iptux: up in {up:.1?}, who and two sends by {sent:.1?}, its message ({copies} copies, \
         {acks} acknowledgements) by {:.1?}",
        started.elapsed()
    );
}

/// Sends `sig` to the member (the PID of `ip netns exec`, which became taojie).
fn signal(member: &Member, sig: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child we started and have not reaped.
    unsafe {
        libc::kill(member.proc.child.id() as i32, sig);
    }
}

/// Polls `check` every 50 ms until it gives a value; panics after [`WAIT`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "no {what} in {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// iptux in a lab of this test run's own: a namespace named after the PID, a fresh directory
/// for iptux's HOME and logs, a free X display. Dropping it (a panic included) runs
/// `ipmsg_lab.sh down`, which ends what `up` started by PID and deletes the namespace; then
/// the directory goes.
struct IptuxLab {
    ns: String,
    dir: tempfile::TempDir,
}

impl IptuxLab {
    /// Brings the lab up; `None` (the test skips) without root, or without iptux outside CI.
    fn up() -> Option<IptuxLab> {
        if !super::can_make_namespaces() {
            return None;
        }
        if !need::tools(&["iptux", "Xvfb", "dbus-run-session", "xdotool"]) {
            return None;
        }
        let lab = IptuxLab {
            ns: format!("tjmsg-{}-iptux", std::process::id()),
            dir: tempfile::Builder::new()
                .prefix("taojie-iptux-")
                .tempdir()
                .expect("a directory for the lab"),
        };
        let (ok, out) = lab.script(&["up"]);
        assert!(ok, "ipmsg_lab.sh up: {out}");
        Some(lab)
    }

    /// The environment and path that run `ipmsg_lab.sh` on this lab.
    fn script_args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            format!("NS={}", self.ns),
            format!("LAB={}", self.dir.path().display()),
            peer_script("ipmsg_lab.sh"),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// Runs `ipmsg_lab.sh ARGS`; returns whether it succeeded and its output.
    fn script(&self, args: &[&str]) -> (bool, String) {
        let all = self.script_args(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (status, out, err) = run_program("env", &all, b"", WAIT * 2);
        (
            status.success(),
            format!("{}{err}", String::from_utf8_lossy(&out)),
        )
    }

    /// Runs `taojie ARGS` in the namespace; returns (success, stdout, stderr).
    fn taojie(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["netns", "exec", self.ns.as_str(), bin()];
        all.extend_from_slice(args);
        let (status, out, err) = run_program("ip", &all, b"", WAIT);
        (
            status.success(),
            String::from_utf8_lossy(&out).into_owned(),
            err,
        )
    }

    /// `taojie msg listen --json ARGS` in the namespace.
    fn listen(&self, args: &[&str]) -> Member {
        let mut all = vec!["netns", "exec", self.ns.as_str(), bin(), "msg", "listen"];
        all.push("--json");
        all.extend_from_slice(args);
        Member::start("ip", &all)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// iptux's chat log as (head line, text) pairs; the head says `Recevied-From` (sic) or
    /// `Send-To`, then `Nickname:N User:U Host:H:`.
    fn chat_log(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.path("home/.config/iptux/log/communicate.log"))
            .unwrap_or_default();
        log.split("=====================================\n")
            .filter_map(|entry| {
                let mut lines = entry.lines();
                let head = lines.next()?.to_string();
                let text: Vec<&str> = lines
                    .take_while(|l| *l != "-------------------------------------")
                    .collect();
                Some((head, text.join("\n").strip_prefix("[STRING]")?.to_string()))
            })
            .collect()
    }

    /// Waits until iptux's chat log has `text` under `direction` (`Recevied-From` or
    /// `Send-To`) and the nickname `nick`.
    fn wait_logged(&self, direction: &str, nick: &str, text: &str) {
        let head = format!("{direction}: Nickname:{nick} ");
        let deadline = Instant::now() + WAIT;
        while !self
            .chat_log()
            .iter()
            .any(|(h, t)| h.contains(&head) && t == text)
        {
            if Instant::now() >= deadline {
                panic!(
                    "iptux's chat log has no {text:?} under {head:?} after {WAIT:?}:\n{:#?}",
                    self.chat_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Packet numbers of the SENDMSG datagrams iptux sent to 127.0.0.1:2425 with `text`.
    fn copies_of(&self, text: &str) -> Vec<u64> {
        self.datagrams()
            .iter()
            .filter(|d| d.sent && d.peer == "127.0.0.1:2425")
            .filter_map(|d| d.fields())
            .filter(|(_, command, extra)| command & 0xff == 0x20 && extra.starts_with(text))
            .map(|(number, _, _)| number)
            .collect()
    }

    /// RECVMSG datagrams iptux received from 127.0.0.1:2425 for its packet `number`.
    fn acks_of(&self, number: u64) -> usize {
        let expect = format!("{number}\0");
        self.datagrams()
            .iter()
            .filter(|d| !d.sent && d.peer == "127.0.0.1:2425")
            .filter_map(|d| d.fields())
            .filter(|(_, command, extra)| command & 0xff == 0x21 && extra.starts_with(&expect))
            .count()
    }

    /// Every datagram in iptux's DEBUG log. A sent one is a line `send udp message to ADDR,
    /// size N` and a hex dump; a received one a line `received udp message from ADDR, size N`
    /// and the bytes as a C string literal.
    fn datagrams(&self) -> Vec<Datagram> {
        let log = std::fs::read_to_string(self.path("iptux.log")).unwrap_or_default();
        let mut all = Vec::new();
        let mut lines = log.lines().peekable();
        while let Some(line) = lines.next() {
            if let Some((_, rest)) = line.split_once("send udp message to ") {
                let mut bytes = Vec::new();
                while let Some(dump) = lines.next_if(|l| is_hex_dump(l)) {
                    bytes.extend(hex_dump_bytes(dump));
                }
                all.push(Datagram::new(true, rest, bytes));
            } else if let Some((_, rest)) = line.split_once("received udp message from ")
                && let Some(literal) = lines.next()
            {
                all.push(Datagram::new(false, rest, unescape(literal)));
            }
        }
        all
    }
}

impl Drop for IptuxLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.path("iptux.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "iptux's chat log: {:#?}\nlast lines of iptux.log:\n{}",
                self.chat_log(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        // Not run_program: it panics on a timeout, and this may run during a panic. The
        // script bounds its own waits.
        let args = self.script_args(&["down"]);
        match Command::new("env").args(&args).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "ipmsg_lab.sh down: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("ipmsg_lab.sh down: {e}"),
        }
    }
}

/// One datagram iptux logged.
struct Datagram {
    /// iptux sent it (else received it).
    sent: bool,
    /// The other end, `IP:PORT`.
    peer: String,
    bytes: Vec<u8>,
}

impl Datagram {
    /// From the rest of the log line after `to ` or `from ` (`ADDR, size N`).
    fn new(sent: bool, rest: &str, bytes: Vec<u8>) -> Self {
        let peer = rest.split(',').next().unwrap_or_default().to_string();
        Datagram { sent, peer, bytes }
    }

    /// Packet number, command and the text after the fifth `:`.
    fn fields(&self) -> Option<(u64, u32, String)> {
        let f: Vec<&[u8]> = self.bytes.splitn(6, |b| *b == b':').collect();
        let [_, number, _, _, command, extra] = f.as_slice() else {
            return None;
        };
        let number = std::str::from_utf8(number).ok()?.parse().ok()?;
        let command = std::str::from_utf8(command).ok()?.parse().ok()?;
        Some((number, command, String::from_utf8_lossy(extra).into_owned()))
    }
}

/// Whether `line` is a line of iptux's hex dumps: an 8-digit hex offset first.
fn is_hex_dump(line: &str) -> bool {
    line.len() >= 8 && line.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
}

/// The bytes of a hex dump line `OFFSET  xx xx ...  |ascii|`.
fn hex_dump_bytes(line: &str) -> Vec<u8> {
    let hex = line[8..].split("  |").next().unwrap_or_default();
    hex.split_whitespace()
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// The bytes of a C string literal as iptux logs received datagrams: `"...\xe4..."`.
fn unescape(literal: &str) -> Vec<u8> {
    let s = literal.trim();
    let s = s.strip_prefix('"').unwrap_or(s);
    let s = s.strip_suffix('"').unwrap_or(s).as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            let (byte, len) = match s[i + 1] {
                b'x' => (
                    std::str::from_utf8(s.get(i + 2..i + 4).unwrap_or_default())
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .unwrap_or(b'?'),
                    4,
                ),
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b't' => (b'\t', 2),
                b'0' => (0, 2),
                other => (other, 2),
            };
            out.push(byte);
            i += len;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}
