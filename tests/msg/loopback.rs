//! On loopback, with explicit broadcast addresses (so nothing leaves 127.0.0.0/8): the seed's
//! Feiq datagram, acknowledgements, leaving, attachments, a message nobody acknowledges, and
//! hostile datagrams. Each test owns its own 127.77.N.0/24 addresses, so they run in parallel.
use std::net::UdpSocket;
use std::time::Duration;

use super::common::{Proc, bin, peer_script, run_program, run_with_input};
use super::{Member, WAIT};

#[test]
fn the_seed_feiq_datagram_is_shown_once_and_acknowledged_twice() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.1.1",
        "--broadcast",
        "127.77.1.9",
    ]);
    let (status, out, err) = run_program(
        "python3",
        &[&peer_script("seed_feiq.py"), "127.77.1.2", "127.77.1.1"],
        b"",
        WAIT,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(status.success(), "seed_feiq.py: {out}{err}");
    let acks: Vec<&str> = out.lines().collect();
    assert_eq!(acks.len(), 2, "{out}");
    for ack in &acks {
        // To the seed's port, GBK like the seed's own packet, naming its packet number.
        assert!(ack.starts_with("127.77.1.1 2425 1_taojie_"), "{ack}");
        assert!(ack.ends_with(":ann:") || ack.contains(":ann:"), "{ack}");
        assert!(ack.ends_with(":33:1289671407"), "{ack}");
    }
    let m = ann.wait_message("发送的内容");
    assert_eq!(m["user"], "名字");
    assert_eq!(m["host"], "备注");
    assert_eq!(m["addr"], "127.77.1.2:2425");
    assert_eq!(m["packet"], 1_289_671_407u64);
    assert!(m["time"].as_str().is_some_and(|t| t.len() >= 20), "{m}");
    let (status, events) = ann.stop();
    assert!(status.success());
    let shown = events.iter().filter(|e| e["event"] == "message").count();
    assert_eq!(
        shown, 1,
        "the re-sent datagram was shown again: {events:#?}"
    );
}

#[test]
fn a_message_is_acknowledged_and_leaving_is_seen() {
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.2.1",
        "--broadcast",
        "127.77.2.2",
    ]);
    let bob = Member::listen(&[
        "--name",
        "bob",
        "--bind",
        "127.77.2.2",
        "--broadcast",
        "127.77.2.1",
    ]);
    ann.wait_event("bob's entry", |e| {
        e["event"] == "entry" && e["nick"] == "bob"
    });
    let (status, _, err) = run_with_input(
        &[
            "msg",
            "send",
            "--name",
            "cat",
            "--bind",
            "127.77.2.3",
            "--broadcast",
            "127.77.2.9",
            "127.77.2.1",
            "你好, ann",
        ],
        b"",
        WAIT,
    );
    assert!(status.success(), "{err}");
    assert!(
        err.contains("acknowledged by ann (127.77.2.1:2425)"),
        "{err}"
    );
    let m = ann.wait_message("你好, ann");
    assert_eq!(m["nick"], "cat");
    let (status, _) = bob.stop();
    assert!(status.success(), "SIGTERM ends the listener with status 0");
    ann.wait_event("bob's exit", |e| e["event"] == "exit" && e["nick"] == "bob");
}

#[test]
fn nobody_acknowledging_is_a_clear_error() {
    // Something bound there that never answers, so the datagrams go nowhere else.
    let _silent = UdpSocket::bind("127.77.3.1:2425").unwrap();
    let (status, _, err) = run_with_input(
        &[
            "msg",
            "send",
            "--bind",
            "127.77.3.2",
            "--broadcast",
            "127.77.3.9",
            "127.77.3.1",
            "anyone?",
        ],
        b"",
        WAIT,
    );
    assert!(!status.success());
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("taojie: error: ") && last.contains("did not acknowledge"),
        "{err}"
    );
}

#[test]
fn attachments_are_fetched_whole_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("notes.txt"), b"already here").unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("notes.txt");
    std::fs::write(&src, &body).unwrap();
    let inbox_arg = inbox.to_str().unwrap();
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.4.1",
        "--broadcast",
        "127.77.4.9",
        "--accept-files",
        inbox_arg,
    ]);
    let src_arg = src.to_str().unwrap().to_string();
    // The sender keeps the file on offer until it is fetched.
    let sender = std::thread::spawn(move || {
        run_with_input(
            &[
                "msg",
                "send",
                "--name",
                "bob",
                "--bind",
                "127.77.4.2",
                "--broadcast",
                "127.77.4.9",
                "127.77.4.1",
                "the notes",
                "--file",
                &src_arg,
                "--wait",
                "10",
            ],
            b"",
            WAIT,
        )
    });
    let m = ann.wait_message("the notes");
    assert_eq!(m["files"][0]["name"], "notes.txt");
    assert_eq!(m["files"][0]["size"], 300_000);
    // Offered, numbered, and fetched only once accepted.
    let offer = ann.wait_event("the offer", |e| e["event"] == "offer");
    assert_eq!(
        (&offer["name"], &offer["fetching"]),
        (&"notes.txt".into(), &false.into())
    );
    ann.proc
        .feed(format!("accept {}\n", offer["offer"]).into_bytes());
    let saved = ann.wait_event("the file", |e| e["event"] == "file");
    let (status, _, err) = sender.join().unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(saved["path"], inbox.join("notes.txt.1").to_str().unwrap());
    assert_eq!(
        std::fs::read(inbox.join("notes.txt")).unwrap(),
        b"already here"
    );
    assert_eq!(std::fs::read(inbox.join("notes.txt.1")).unwrap(), body);
    let leftovers: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".taojie-part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Datagrams no real peer sends; the listener must show nothing raw, stay small, and go on.
#[test]
fn hostile_datagrams_never_crash_it_or_reach_the_terminal() {
    // A human-format listener, stdout captured: what a terminal would get.
    let mut human = Proc::spawn(
        bin(),
        &[
            "msg",
            "listen",
            "--name",
            "ann",
            "--bind",
            "127.77.5.1",
            "--broadcast",
            "127.77.5.9",
            "--max-members",
            "500",
        ],
    );
    human.wait_stderr("msg udp ", WAIT);
    let target = "127.77.5.1:2425";
    let evil = UdpSocket::bind("127.77.5.2:2425").unwrap();
    let junk: Vec<Vec<u8>> = vec![
        b"1:2:u".to_vec(),
        b"".to_vec(),
        (0..=255u8).cycle().take(3000).collect(),
        [b"1:7:u:h:32:".as_slice(), &vec![b'A'; 65_000]].concat(),
        b"1:8:e\x1b[2J\x1b]0;pwned\x07:h\x1b[31m:32:\x1b[H\x1b[2Jgotcha\x00x".to_vec(),
        b"1:9:nul\x00name:h:32:x".to_vec(),
        b"1:10:u:h:33:999999".to_vec(),
        b"1:11:u:h:4294967295:".to_vec(),
        b"1:99999999999999999999999:u:h:32:x".to_vec(),
        b"1:12:u:h:2097440:files\x00\x07\x07::::\x07-1:x:zz:0:1:\x07".to_vec(),
    ];
    for j in &junk {
        let _ = evil.send_to(j, target);
    }
    // An entry flood from 10,000 forged members, each from its own loopback address.
    for i in 0..10_000u32 {
        let ip = format!("127.78.{}.{}", i / 250, i % 250 + 1);
        let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let _ = s.send_to(format!("1:{i}:fake{i}:h:1:fake{i}").as_bytes(), target);
    }
    // After all that, a real message still gets through and is acknowledged.
    let (status, _, err) = run_with_input(
        &[
            "msg",
            "send",
            "--name",
            "bob",
            "--bind",
            "127.77.5.3",
            "--broadcast",
            "127.77.5.9",
            "127.77.5.1",
            "still there?",
        ],
        b"",
        WAIT,
    );
    assert!(status.success(), "{err}");
    let rss = rss_kib(human.child.id());
    assert!(
        rss < 64 * 1024,
        "listener resident set {rss} KiB after the flood"
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&human.stdout).contains("still there?")
        && std::time::Instant::now() < deadline
    {
        human.more_stdout(Duration::from_millis(200));
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of the child we started.
    unsafe {
        libc::kill(human.child.id() as i32, libc::SIGTERM);
    }
    let (status, out, _) = human.finish(WAIT);
    assert!(status.success(), "the listener died: {status}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("still there?"), "{out}");
    assert!(
        out.contains("gotcha"),
        "the escape-laden message is shown, neutralised: {out}"
    );
    let raw: Vec<char> = out
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        raw.is_empty(),
        "control characters reached the terminal: {raw:?}"
    );
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn names_come_from_the_contact_book_and_a_bad_book_is_one_clear_error() {
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir(config.path().join("taojie")).unwrap();
    let book = config.path().join("taojie/contacts.toml");
    std::fs::write(&book, "# name = \"address\"\nbobby = \"127.77.6.1\"\n").unwrap();
    let mut bob = Member::listen(&[
        "--name",
        "bob",
        "--bind",
        "127.77.6.1",
        "--broadcast",
        "127.77.6.9",
    ]);
    let send = |to: &str| {
        let mut child = crate::common::command(bin())
            .args([
                "msg",
                "send",
                "--name",
                "ann",
                "--bind",
                "127.77.6.2",
                "--broadcast",
                "127.77.6.9",
                to,
                "via the book",
            ])
            .env("XDG_CONFIG_HOME", config.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = super::common::wait_timeout(&mut child, WAIT).expect("msg send finishes");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status, err)
    };
    let (status, err) = send("bobby");
    assert!(status.success(), "{err}");
    bob.wait_message("via the book");
    std::fs::write(&book, "bobby = 12\n").unwrap();
    let (status, err) = send("bobby");
    assert!(!status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("taojie: error: ") && err.contains("contacts.toml"),
        "{err}"
    );
}

/// Information requests and messages from a forged source make every answer a packet to a
/// victim: a bare request gets nothing (the answer would be larger), and one address gets a
/// burst of answers and then a few a second, never more than about the request's size.
#[test]
fn information_requests_and_acknowledgements_reflect_little_and_seldom() {
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.10.1",
        "--broadcast",
        "127.77.10.9",
    ]);
    let target = "127.77.10.1:2425";
    let evil = UdpSocket::bind("127.77.10.2:0").unwrap();
    evil.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    // Returns the sizes of the answers to `requests`, sent as fast as they go, and the time
    // from the first request to the last answer.
    let flood = |requests: &[Vec<u8>]| -> (Vec<usize>, f64) {
        let started = std::time::Instant::now();
        for r in requests {
            evil.send_to(r, target).unwrap();
        }
        let mut sizes = Vec::new();
        let mut buf = [0u8; 9000];
        while let Ok(n) = evil.recv(&mut buf) {
            sizes.push(n);
        }
        (sizes, started.elapsed().as_secs_f64())
    };
    // GETINFO, GETABSENCEINFO and SENDMSG|SENDCHECK, bare: 11 to 14 bytes each.
    let bare: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("1:{i}:u:h:{}:", [0x40, 0x50, 0x120][i as usize % 3]).into_bytes())
        .collect();
    let (sizes, _) = flood(&bare);
    assert!(
        sizes.is_empty(),
        "{} of 300 bare requests answered, sizes from {:?}",
        sizes.len(),
        sizes.iter().min()
    );

    // The same with names as long as a real client's: answered, within the request's size
    // and 16 bytes, 20 at once and then 10 a second.
    let padded: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            let kind = [0x40, 0x50, 0x120][i as usize % 3];
            format!(
                "1_iptux 0.9.4:{}:mallory-the-long:workstation-42:{kind}:hi",
                1000 + i
            )
            .into_bytes()
        })
        .collect();
    let (sizes, took) = flood(&padded);
    let smallest = padded.iter().map(Vec::len).min().unwrap();
    assert!(
        sizes.iter().all(|&n| n <= smallest + 16),
        "answers {sizes:?} to requests of {smallest}+ bytes"
    );
    // From the first request to the last answer.
    let allowed = 20.0 + 10.0 * took;
    assert!(
        sizes.len() >= 20 && sizes.len() as f64 <= allowed,
        "{} answers to 300 requests within {took:.3} s",
        sizes.len()
    );
    // A real message from elsewhere is still acknowledged and shown.
    let (status, _, err) = run_with_input(
        &[
            "msg",
            "send",
            "--name",
            "bob",
            "--bind",
            "127.77.10.3",
            "--broadcast",
            "127.77.10.9",
            "127.77.10.1",
            "hi",
        ],
        b"",
        WAIT,
    );
    assert!(status.success(), "{err}");
    ann.wait_message("hi");
}

/// GBK with a peer that is not taojie: `tests/peers/ipmsg_gbk_peer.py` builds and parses the
/// packets itself and encodes and decodes GBK itself, announcing no UTF-8, as Feiq does. Its
/// nickname and message reach a listener decoded; a message to it goes out in GBK (bytes that
/// are not UTF-8, no UTF-8 option) and reads right there.
#[test]
fn a_gbk_peer_of_another_implementation_is_understood_both_ways() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let net = "127.77.30";
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        &format!("{net}.1"),
        "--broadcast",
        &format!("{net}.9"),
    ]);
    let (out_text, in_text) = ("你好，世界 from Feiq", "收到，老王");
    let peer = Proc::spawn(
        "python3",
        &[
            &peer_script("ipmsg_gbk_peer.py"),
            &format!("{net}.2"),
            &format!("{net}.1"),
            out_text,
            in_text,
        ],
    );
    let entry = ann.wait_event("the GBK peer's entry", |e| {
        e["event"] == "entry" && e["addr"] == format!("{net}.2:2425")
    });
    assert_eq!(entry["nick"], "老王", "{entry}");
    let m = ann.wait_message(out_text);
    assert_eq!(m["nick"], "老王", "{m}");

    let (status, _, err) = run_with_input(
        &[
            "msg",
            "send",
            "--name",
            "cat",
            "--bind",
            &format!("{net}.3"),
            "--broadcast",
            &format!("{net}.9"),
            &format!("{net}.2"),
            in_text,
        ],
        b"",
        WAIT,
    );
    assert!(status.success(), "msg send to the GBK peer: {err}");
    let (status, out, err) = peer.finish(WAIT * 4);
    assert!(status.success(), "ipmsg_gbk_peer.py: {err}");
    let steps: Vec<serde_json::Value> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(steps[0]["answered"], true, "{steps:?}");
    assert_eq!(
        steps[1]["acked"], true,
        "our message was not acknowledged: {steps:?}"
    );
    let got = &steps[2];
    assert_eq!(got["text"], in_text, "{steps:?}");
    assert_eq!(
        (&got["utf8_bytes"], &got["utf8_option"]),
        (&false.into(), &false.into()),
        "not sent as GBK: {got}"
    );
}

/// Stops `member` with SIGINT (Ctrl-C) and returns its exit status, every event it printed
/// and its standard error.
fn interrupt(member: Member) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child we started and have not reaped.
    unsafe {
        libc::kill(member.proc.child.id() as i32, libc::SIGINT);
    }
    let (status, out, err) = member.proc.finish(WAIT);
    let events = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (status, events, err)
}

#[test]
fn a_sender_or_asker_passing_through_is_not_announced_to_listeners() {
    let mut ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.40.1",
        "--broadcast",
        "127.77.40.2",
    ]);
    let mut bob = Member::listen(&[
        "--name",
        "bob",
        "--bind",
        "127.77.40.2",
        "--broadcast",
        "127.77.40.1",
    ]);
    ann.wait_event("bob's entry", |e| {
        e["event"] == "entry" && e["nick"] == "bob"
    });
    // Both listeners hear the entry that looks ann up by name, and then the message to ann.
    let passing = |command: &str, args: &[&str]| {
        let mut all = vec![
            "msg",
            command,
            "--name",
            "cat",
            "--bind",
            "127.77.40.3",
            "--broadcast",
            "127.77.40.1",
            "--broadcast",
            "127.77.40.2",
        ];
        all.extend_from_slice(args);
        let (status, out, err) = run_with_input(&all, b"", WAIT);
        assert!(status.success(), "{all:?}: {err}");
        String::from_utf8_lossy(&out).into_owned()
    };
    passing("send", &["ann", "by name"]);
    let m = ann.wait_message("by name");
    assert_eq!(m["nick"], "cat", "the passing entry still names the sender");
    let who = passing("who", &["--wait", "1"]);
    assert!(who.contains("ann") && who.contains("bob"), "{who}");
    // Whatever cat caused came before these, so it has been printed by the time they are.
    for (member, text) in [(&mut ann, "after ann"), (&mut bob, "after bob")] {
        let to = member.addr.clone();
        let (status, _, err) = run_with_input(
            &[
                "msg",
                "send",
                "--bind",
                "127.77.40.4",
                "--broadcast",
                "127.77.40.9",
                &to,
                text,
            ],
            b"",
            WAIT,
        );
        assert!(status.success(), "{err}");
        member.wait_message(text);
    }
    for member in [ann, bob] {
        let (status, events, err) = interrupt(member);
        assert!(status.success(), "{err}");
        let announced: Vec<_> = events
            .iter()
            .filter(|e| e["event"] == "entry" || e["event"] == "exit")
            .filter(|e| e["nick"] != "ann" && e["nick"] != "bob")
            .collect();
        assert!(announced.is_empty(), "passers-by announced: {announced:#?}");
    }
}

#[test]
fn ctrl_c_ends_a_listener_without_a_server_s_shutdown_line() {
    let ann = Member::listen(&[
        "--name",
        "ann",
        "--bind",
        "127.77.41.1",
        "--broadcast",
        "127.77.41.9",
    ]);
    let (status, _, err) = interrupt(ann);
    assert!(status.success(), "{err}");
    assert!(!err.contains("shutting down"), "{err}");
    assert!(!err.contains("connections"), "{err}");
}
