//! Names, rooms, history and leaving, with nc and taojie clients talking at once.
use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use super::{Client, chat_server, raw_client, unstamp, welcomed};

#[test]
fn nc_and_taojie_clients_chat_with_names_rooms_and_history() {
    if !crate::common::need::tool("nc") {
        return;
    }
    let server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let mut ncs: Vec<Client> = (0..3).map(|_| Client::nc(&addr)).collect();
    let names = ["ann", "ben", "cat"];
    for (c, name) in ncs.iter_mut().zip(names) {
        c.wait_for("welcome", |l| l.starts_with("*** welcome, you are user"));
        c.send(&format!("/nick {name}"));
        c.wait_for("own rename", |l| {
            l.ends_with(&format!("is now known as {name}"))
        });
    }
    let mut dora = Client::taojie(&addr, "dora", &[]);
    dora.wait_for("own welcome", welcomed("dora"));
    // A client with --name comes in under it: no default name first.
    ncs[0].wait_line("*** dora joined lobby");

    // Everyone talks at once; each must see the others' lines in each sender's order.
    const N: usize = 20;
    for i in 0..N {
        for (c, name) in ncs.iter_mut().zip(names) {
            c.send(&format!("{name} says {i}"));
        }
        dora.send(&format!("dora says {i}"));
    }
    let mut everyone: Vec<(&str, &mut Client)> = names.into_iter().zip(ncs.iter_mut()).collect();
    everyone.push(("dora", &mut dora));
    for (me, c) in everyone.iter_mut() {
        for other in ["ann", "ben", "cat", "dora"].iter().filter(|o| *o != me) {
            let want = format!("<{other}> {other} says {}", N - 1);
            c.saw_or_wait(&want);
            let got: Vec<&String> = c
                .seen
                .iter()
                .filter(|l| l.starts_with(&format!("<{other}> ")))
                .collect();
            let expected: Vec<String> = (0..N)
                .map(|i| format!("<{other}> {other} says {i}"))
                .collect();
            assert_eq!(got, expected.iter().collect::<Vec<_>>(), "{me} saw {other}");
            assert!(
                !c.seen.iter().any(|l| l.starts_with(&format!("<{me}> "))),
                "{me} got its own line back"
            );
        }
    }

    // /who lists the room; /me is an action; a name in use is refused.
    ncs[0].send("/who");
    ncs[0].wait_line("*** in lobby (4): ann, ben, cat, dora");
    ncs[1].send("/me waves");
    dora.wait_line("* ben waves");
    ncs[2].send("/nick ANN");
    ncs[2].wait_for("taken", |l| l.contains("name ANN is taken"));

    // A latecomer gets the last 20 lines of history.
    let mut eve = Client::nc(&addr);
    eve.wait_for("welcome", |l| l.starts_with("*** welcome"));
    eve.wait_for("ben's wave", |l| l.ends_with("] * ben waves"));
    let history: Vec<&String> = eve.seen.iter().filter(|l| !l.starts_with("***")).collect();
    assert_eq!(history.len(), 20, "{:#?}", eve.seen);
    assert!(history.iter().all(|l| unstamp(l).is_some()), "{history:#?}");

    // /join moves a member; both rooms are told; lines stay in their room.
    ncs[1].send("/join dev");
    ncs[0].wait_line("*** ben left lobby (joined dev)");
    ncs[1].wait_line("*** ben joined dev");
    ncs[1].send("only dev hears this");
    ncs[1].send("/who");
    ncs[1].wait_line("*** in dev (1): ben");
    ncs[0].send("/join dev");
    ncs[1].wait_line("*** ann joined dev");
    // ann gets dev's history, the line with the time it was said.
    ncs[0].wait_for("dev's history", |l| {
        l.ends_with("] <ben> only dev hears this")
    });
    dora.send("back in the lobby");
    ncs[2].wait_line("<dora> back in the lobby");

    // Leaving is announced: /quit, the seeds' byebye, and a closed connection.
    ncs[2].send("/quit");
    ncs[2].wait_line("*** bye");
    dora.wait_line("*** cat left lobby (quit)");
    eve.send("byebye");
    dora.wait_for("eve's leaving", |l| {
        l.starts_with("*** user") && l.ends_with("left lobby (quit)")
    });
    drop(ncs.remove(0));
    ncs[0].wait_line("*** ann left dev (disconnected)");
    ncs[0].send("/join lobby");
    ncs[0].wait_line("*** ben joined lobby");
    drop(dora.stdin.take());
    ncs[0].wait_line("*** dora left lobby (disconnected)");
    ncs[0].send("/who");
    ncs[0].wait_for("dora gone", |l| l == "*** in lobby (1): ben");
}

/// Posts are written by one lane per core; whatever the lanes, every member must see the
/// lines of two senders talking at once in one and the same order, as one conversation.
#[test]
fn every_member_sees_one_order_when_two_talk_at_once() {
    // Three lanes, whatever the machine's CPUs, and the room split over them from four
    // members on: the readers arriving split it, so a fence is crossed too.
    let server = chat_server(&["--lanes", "3", "--split-at", "4"]);
    let addr = server.addr("chat", "tcp");
    let mut readers: Vec<_> = (0..6)
        .map(|i| raw_client(&addr, &format!("r{i}")))
        .collect();
    let (mut a, _) = raw_client(&addr, "wa");
    let (mut b, _) = raw_client(&addr, "wb");
    const N: usize = 300;
    let send = |s: &mut TcpStream, who: &str| {
        // Small writes, so the two senders' lines interleave at the broker.
        for i in 0..N {
            s.write_all(format!("{who} {i}\n").as_bytes()).unwrap();
        }
    };
    std::thread::scope(|t| {
        t.spawn(|| send(&mut a, "a"));
        t.spawn(|| send(&mut b, "b"));
    });
    let mut orders = Vec::new();
    for (_, r) in readers.iter_mut() {
        let mut got = Vec::new();
        let mut line = String::new();
        while got.len() < 2 * N {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed early");
            if line.starts_with("<wa> ") || line.starts_with("<wb> ") {
                got.push(line.clone());
            }
        }
        orders.push(got);
    }
    for (i, order) in orders.iter().enumerate() {
        for who in ["a", "b"] {
            let mine: Vec<&String> = order
                .iter()
                .filter(|l| l.starts_with(&format!("<w{who}>")))
                .collect();
            let want: Vec<String> = (0..N).map(|k| format!("<w{who}> {who} {k}\n")).collect();
            assert!(
                mine.iter().zip(&want).all(|(g, w)| *g == w),
                "r{i}: {who}'s lines out of order"
            );
        }
        assert_eq!(
            order, &orders[0],
            "r{i} saw the two senders interleaved differently from r0"
        );
    }
}

#[test]
fn look_alike_names_are_refused_and_a_rename_is_confirmed_before_the_next_reply() {
    if !crate::common::need::tool("nc") {
        return;
    }
    let server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let mut alice = Client::nc(&addr);
    alice.wait_for("welcome", |l| l.starts_with("*** welcome"));
    // The rename and the /who right after it: the confirmation comes first, and /who already
    // shows the new name.
    alice.send("/nick alice");
    alice.send("/who");
    let first = alice.wait_for("a reply", |l| l.starts_with("*** "));
    assert!(first.ends_with("is now known as alice"), "{first}");
    alice.wait_for("who", |l| l.contains("in lobby") && l.contains("alice"));
    let mut mallory = Client::nc(&addr);
    mallory.wait_for("welcome", |l| l.starts_with("*** welcome"));
    // Cyrillic а, capitals, a capital I for an l, a dotted capital I for an i: each looks
    // like alice.
    for fake in ["\u{430}lice", "ALICE", "aIice", "al\u{130}ce"] {
        mallory.send(&format!("/nick {fake}"));
        let reply = mallory.wait_for("a refusal", |l| l.contains("is taken"));
        assert!(reply.contains(fake), "{reply}");
    }
    // Invisible letters (HANGUL FILLER), a small capital L, an l with a middle dot: no
    // names at all.
    for bad in ["\u{3164}", "al\u{3164}ice", "a\u{29f}ice", "a\u{140}ice"] {
        mallory.send(&format!("/nick {bad}"));
        let reply = mallory.wait_for("a refusal", |l| l.contains("not allowed in names"));
        assert!(reply.contains("U+"), "{bad:?}: {reply}");
    }
    // Other scripts stay welcome.
    mallory.send("/nick 小明");
    mallory.wait_for("rename", |l| l.ends_with("is now known as 小明"));
}

#[test]
fn history_carries_the_time_each_line_was_said() {
    let server = chat_server(&[]);
    let addr = server.addr("chat", "tcp");
    let mut ann = Client::nc(&addr);
    ann.send("/nick ann");
    ann.wait_for("own rename", |l| l.ends_with("is now known as ann"));
    let mut bob = Client::nc(&addr);
    bob.send("/nick bob");
    bob.wait_for("own rename", |l| l.ends_with("is now known as bob"));
    // Two lines two seconds apart, and a newcomer two seconds after the second.
    let mut said = Vec::new();
    for text in ["first", "second"] {
        let before = chrono::Utc::now();
        ann.send(text);
        bob.wait_line(&format!("<ann> {text}"));
        said.push((before, chrono::Utc::now()));
        thread::sleep(Duration::from_secs(2));
    }
    let mut eve = Client::nc(&addr);
    eve.wait_for("welcome", |l| l.starts_with("*** welcome"));
    eve.wait_for("the history", |l| l.ends_with("<ann> second"));
    let history: Vec<_> = eve
        .seen
        .iter()
        .filter(|l| !l.starts_with("***"))
        .map(|l| unstamp(l).unwrap_or_else(|| panic!("no time on {l:?}")))
        .collect();
    assert_eq!(history.len(), 2, "{:#?}", eve.seen);
    for ((at, line), (before, after)) in history.iter().zip(&said) {
        // The stamp is to the second: it may be up to a second before `before`.
        let earliest = *before - chrono::TimeDelta::seconds(1);
        assert!(
            earliest <= *at && at <= after,
            "{line:?} stamped {at}, said between {before} and {after}"
        );
    }
    assert!(history[1].0 - history[0].0 >= chrono::TimeDelta::seconds(1));
}
