//! `taojie serve relay`: two Python `wormhole` clients and two taojie peers through it (the
//! transit relay alone: neither side listens), and the mailbox protocol spoken raw on
//! loopback — a third side is crowded out, a client that reconnects gets its mailbox back, an
//! unattended channel expires.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::Server;
use crate::lab::{Lab, both_ok};
use crate::{LIMIT, fill_file, make_tree, same_tree};

#[test]
fn two_wormhole_clients_through_taojie_relay() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    std::fs::create_dir_all(dir.join("dst")).unwrap();
    fill_file(&dir.join("data.bin"), 8 << 20);
    // The sender's code comes from the relay (allocate): read it off its stderr.
    let mut s = lab.wormhole(
        &["send", "--hide-progress", "--no-listen", "data.bin"],
        dir,
        b"",
    );
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.wormhole(
        &[
            "receive",
            "--hide-progress",
            "--no-listen",
            "--accept-file",
            &code,
        ],
        &dir.join("dst"),
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(
        r.stderr.contains("Receiving (->relay:tcp:127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(dir.join("data.bin")).unwrap(),
        std::fs::read(dir.join("dst/data.bin")).unwrap()
    );
}

#[test]
fn taojie_peers_through_taojie_relay() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    make_tree(&dir.join("album"));
    fill_file(&dir.join("big.bin"), 16 << 20);
    let mut s = lab.taojie_cmd(&["send", "--no-listen", "album", "big.bin"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let d = dst.display().to_string();
    let r = lab.taojie_cmd(
        &["receive", &code, "--no-listen", "--accept", "-o", &d],
        dir,
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(
        r.stderr.contains("Receiving (relay 127.0.0.1:"),
        "{}",
        r.stderr
    );
    same_tree(&dir.join("album"), &dst.join("album"));
    assert_eq!(
        std::fs::read(dir.join("big.bin")).unwrap(),
        std::fs::read(dst.join("big.bin")).unwrap()
    );
    // Modes travel with the entries (taojie peers stream them; no zip).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dst.join("album/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

/// A mailbox client speaking the protocol by hand.
struct Raw {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Raw {
    async fn bind(url: &str, side: &str) -> Raw {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut r = Raw { ws };
        assert_eq!(r.next().await["type"], "welcome");
        r.send(json!({"type": "bind", "appid": "test/app", "side": side}))
            .await;
        r
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next message that is not an ack (10 s at most).
    async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("the relay answers")
                .unwrap()
                .unwrap();
            let v: Value = serde_json::from_slice(&m.into_data()).unwrap();
            if v["type"] != "ack" {
                return v;
            }
        }
    }

    async fn claim_open(&mut self, nameplate: &str) -> String {
        self.send(json!({"type": "claim", "nameplate": nameplate}))
            .await;
        let claimed = self.next().await;
        assert_eq!(claimed["type"], "claimed", "{claimed}");
        let mailbox = claimed["mailbox"].as_str().unwrap().to_string();
        self.send(json!({"type": "open", "mailbox": mailbox})).await;
        mailbox
    }
}

fn relay(extra: &[&str]) -> (Server, String) {
    let mut args = vec!["serve", "relay", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    let s = Server::start(&args, 1);
    let url = format!("ws://{}/v1", s.addr("relay", "tcp"));
    (s, url)
}

#[tokio::test]
async fn a_third_side_is_crowded_out() {
    let (_s, url) = relay(&[]);
    let mut a = Raw::bind(&url, "aaaa").await;
    let mut b = Raw::bind(&url, "bbbb").await;
    let mut c = Raw::bind(&url, "cccc").await;
    a.claim_open("4").await;
    b.claim_open("4").await;
    c.send(json!({"type": "claim", "nameplate": "4"})).await;
    let e = c.next().await;
    assert_eq!(
        (e["type"].as_str(), e["error"].as_str()),
        (Some("error"), Some("crowded"))
    );
    // Messages reach both sides, the sender's own echo included.
    a.send(json!({"type": "add", "phase": "pake", "body": "00ff"}))
        .await;
    for x in [&mut a, &mut b] {
        let m = x.next().await;
        assert_eq!(
            (m["type"].as_str(), m["side"].as_str(), m["body"].as_str()),
            (Some("message"), Some("aaaa"), Some("00ff"))
        );
    }
}

#[tokio::test]
async fn a_client_that_reconnects_gets_its_mailbox_back() {
    let (_s, url) = relay(&[]);
    let mut a = Raw::bind(&url, "aaaa").await;
    let mailbox = a.claim_open("5").await;
    a.send(json!({"type": "add", "phase": "pake", "body": "01"}))
        .await;
    assert_eq!(a.next().await["body"], "01");
    drop(a); // connection lost
    let mut b = Raw::bind(&url, "bbbb").await;
    assert_eq!(b.claim_open("5").await, mailbox);
    assert_eq!(b.next().await["body"], "01");
    b.send(json!({"type": "add", "phase": "pake", "body": "02"}))
        .await;
    // The first side comes back on a new connection and finds both messages.
    let mut a2 = Raw::bind(&url, "aaaa").await;
    a2.send(json!({"type": "open", "mailbox": mailbox})).await;
    let bodies = [
        a2.next().await["body"].clone(),
        a2.next().await["body"].clone(),
    ];
    assert_eq!(bodies, [json!("01"), json!("02")]);
}

#[tokio::test]
async fn an_unattended_channel_expires() {
    let (_s, url) = relay(&["--channel-expiry", "0.5"]);
    let mut a = Raw::bind(&url, "aaaa").await;
    let old = a.claim_open("6").await;
    a.send(json!({"type": "add", "phase": "pake", "body": "01"}))
        .await;
    a.next().await;
    drop(a);
    // Expired: the nameplate leads to a new, empty mailbox. Polled, bounded (a hang only).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut b = Raw::bind(&url, &format!("b{}", deadline.elapsed().as_nanos())).await;
        b.send(json!({"type": "list"})).await;
        let list = b.next().await;
        if list["nameplates"].as_array().unwrap().is_empty() {
            assert_ne!(b.claim_open("6").await, old);
            b.send(json!({"type": "ping", "ping": 7})).await;
            // Nothing in it: the next message is the pong, not an old message.
            assert_eq!(b.next().await["type"], "pong");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the channel did not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn out_of_order_and_junk_commands_get_errors_and_the_connection_goes_on() {
    let (_s, url) = relay(&[]);
    let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut r = Raw { ws };
    assert_eq!(r.next().await["type"], "welcome");
    for bad in [
        json!({"type": "claim", "nameplate": "1"}),
        json!({"type": "frobnicate"}),
        json!([1, 2]),
    ] {
        r.send(bad).await;
        assert_eq!(r.next().await["type"], "error");
    }
    r.ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(r.next().await["type"], "error");
    r.send(json!({"type": "bind", "appid": "x", "side": "s"}))
        .await;
    r.send(json!({"type": "claim", "nameplate": "../etc"}))
        .await;
    assert_eq!(r.next().await["error"], "invalid nameplate");
    r.send(json!({"type": "allocate"})).await;
    assert_eq!(r.next().await["type"], "allocated");
}

#[test]
fn receive_asks_for_the_code_on_a_terminal_and_tab_completes_words() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let code = "7-crossover-clockwork";
    let s = lab.taojie_cmd(
        &["send", "--text", "typed with tabs", "--code", code],
        dir,
        b"",
    );
    let driver = crate::common::peer_script("pty_type.py");
    let r = lab.spawn(
        "python3",
        &[
            &driver,
            "7-cros",
            "\\t",
            "clo",
            "\\t",
            "\\r",
            "--",
            crate::common::bin(),
            "receive",
            "--relay-url",
            &lab.relay_url,
            "--transit-helper",
            &lab.transit,
        ],
        dir,
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    let screen = String::from_utf8_lossy(&r.stdout);
    assert!(
        screen.contains("Tab completes words): 7-crossover-clockwork"),
        "{screen}"
    );
    assert!(screen.contains("typed with tabs"), "{screen}");
}
