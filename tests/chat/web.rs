//! The chat page and its WebSocket (`--web`): WebSocket members and nc members in the same
//! rooms, one message per line; the policy on every response and refused foreign pages; the
//! token a keyed broker asks for; and the page itself in a real Chromium
//! (`tests/peers/web_chat.py`, driven with selenium).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use hmac::{KeyInit, Mac};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use super::common::{self, Proc, Server, bin, need, peer_script, run_program};
use super::{Client, WAIT, raw_client, welcomed};

type Ws = WebSocket<TcpStream>;

/// A broker with its page on port 0; `(server, chat address, web address)`.
fn web_server(extra: &[&str]) -> (Server, String, String) {
    let mut args = vec![
        "serve",
        "chat",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args, 2);
    let (chat, web) = (server.addr("chat", "tcp"), server.addr("chat-web", "tcp"));
    (server, chat, web)
}

/// A keyed broker (`auth`: `--key FILE` or `--identity ... --authorized ...`) with its page on
/// port 0; `(server, chat address, web address, login URL)` once both addresses and the login
/// line are printed.
fn keyed_web_server(auth: &[&str]) -> (Proc, String, String, String) {
    let mut args = vec![
        "serve",
        "chat",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(auth);
    let mut server = Proc::spawn(bin(), &args);
    let login = server.wait_stderr("chat-web login ", WAIT);
    let url = login
        .strip_prefix("chat-web login ")
        .unwrap()
        .trim()
        .to_string();
    while !String::from_utf8_lossy(&server.stdout).contains("chat-web tcp ") {
        assert!(server.more_stdout(WAIT), "no chat-web line");
    }
    let out = String::from_utf8_lossy(&server.stdout).to_string();
    let addr = |svc: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{svc} tcp ")))
            .unwrap()
            .to_string()
    };
    let (chat, web) = (addr("chat"), addr("chat-web"));
    (server, chat, web, url)
}

/// Opens `ws://WEB/ws?QUERY` with extra headers; the WebSocket, or the refusal's status.
fn open(web: &str, query: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut req = format!("ws://{web}/ws{query}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            tungstenite::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let stream = TcpStream::connect(web).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, resp)) => {
            assert!(has_policy(resp.headers()), "101 without the policy");
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert!(has_policy(resp.headers()), "refusal without the policy");
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

fn has_policy(h: &tungstenite::http::HeaderMap) -> bool {
    h.get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("script-src 'self'") && !v.contains("unsafe-inline"))
}

/// Reads text messages until one satisfies `pred`; every message must be one line.
fn wait_msg(ws: &mut Ws, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                assert!(!t.contains('\n'), "a message of more than one line: {t:?}");
                if pred(&t) {
                    return t.to_string();
                }
                seen.push(t.to_string());
            }
            Ok(_) => {}
            Err(e) => panic!("never got {what} ({e}); got {seen:#?}"),
        }
    }
}

/// Reads until the close frame; returns its code.
fn wait_close(ws: &mut Ws) -> CloseCode {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map_or(CloseCode::Status, |f| f.code),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// A WebSocket member that picked `name`.
fn ws_member(web: &str, name: &str) -> Ws {
    let mut ws = open(web, "", &[]).expect("websocket");
    ws.send(Message::text(format!("/nick {name}"))).unwrap();
    wait_msg(&mut ws, "own rename", |m| {
        m.ends_with(&format!("is now known as {name}"))
    });
    ws
}

/// A plain HTTP GET; `(status, head, body)`.
fn get(web: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn websocket_and_nc_members_share_rooms_one_message_per_line() {
    let (_server, chat, web) = web_server(&["--max-line", "100"]);
    let mut wes = ws_member(&web, "wes");
    let (mut nora, mut nora_r) = raw_client(&chat, "nora");
    let mut read_nc = |want: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                std::io::BufRead::read_line(&mut nora_r, &mut line).unwrap() > 0,
                "nc closed before {want:?}"
            );
            if line.trim_end() == want {
                return;
            }
        }
    };

    wes.send(Message::text("hello from the web")).unwrap();
    read_nc("<wes> hello from the web");
    nora.write_all(b"hi wes\n/me waves\n").unwrap();
    wait_msg(&mut wes, "nora's line", |m| m == "<nora> hi wes");
    wait_msg(&mut wes, "nora's action", |m| m == "* nora waves");
    // Newlines in a message are line ends, as they would be over TCP.
    wes.send(Message::text("two\r\nlines")).unwrap();
    read_nc("<wes> two");
    read_nc("<wes> lines");
    // Too long for --max-line: refused with the broker's notice, and the socket stays open.
    wes.send(Message::text("x".repeat(101))).unwrap();
    wait_msg(&mut wes, "the refusal", |m| {
        m == "*** line too long (over 100 bytes); not sent"
    });
    wes.send(Message::text("still here")).unwrap();
    read_nc("<wes> still here");
    wes.send(Message::text("/join dev")).unwrap();
    wait_msg(&mut wes, "own join", |m| m == "*** wes joined dev");
    nora.write_all(b"/join dev\n").unwrap();
    wait_msg(&mut wes, "nora's join", |m| m == "*** nora joined dev");
    wes.send(Message::text("/who")).unwrap();
    wait_msg(&mut wes, "/who", |m| m == "*** in dev (2): nora, wes");

    // Far too long for any line: the socket is closed before the message is held.
    let mut big = ws_member(&web, "big");
    big.send(Message::text("y".repeat(64 * 1024))).unwrap();
    assert_eq!(wait_close(&mut big), CloseCode::Size);
    // Binary messages are not lines.
    let mut bin_ws = ws_member(&web, "bin");
    bin_ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(wait_close(&mut bin_ws), CloseCode::Unsupported);
    // /quit: the broker says bye, and the socket closes normally; the room is told.
    wes.send(Message::text("/quit")).unwrap();
    wait_msg(&mut wes, "bye", |m| m == "*** bye");
    assert_eq!(wait_close(&mut wes), CloseCode::Normal);
    read_nc("*** wes left dev (quit)");
}

#[test]
fn a_page_that_answers_no_pings_leaves_its_room_and_one_that_does_stays() {
    // Pings every 0.5 s: a page silent for 1.25 s has gone.
    let (_server, chat, web) = web_server(&["--web-ping", "0.5"]);
    let (_nora, mut nora_r) = raw_client(&chat, "nora");
    let mut mute = ws_member(&web, "mute");
    let mut live = ws_member(&web, "live");
    // `mute` reads nothing from now on, so it answers no ping; `live` keeps reading (tungstenite
    // answers each ping as it reads) and is still there after many intervals.
    wait_msg(&mut live, "mute leaving", |m| {
        m.starts_with("*** mute left lobby")
    });
    let mut line = String::new();
    while !line.starts_with("*** mute left lobby") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut nora_r, &mut line).unwrap() > 0,
            "nc closed before mute left"
        );
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    live.get_mut()
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    while std::time::Instant::now() < until {
        match live.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("the page that answers pings was closed: {e}"),
        }
    }
    live.get_mut().set_read_timeout(Some(WAIT)).unwrap();
    live.send(Message::text("/who")).unwrap();
    wait_msg(&mut live, "/who", |m| m == "*** in lobby (2): live, nora");
    // The mute page's connection was closed (with a close frame saying why, if it gets to
    // read it before its pending pongs meet the closed socket).
    loop {
        match mute.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the mute page's socket is still open")
            }
            Err(_) => break,
        }
    }
}

#[test]
fn with_only_an_identity_key_the_websocket_needs_a_token_that_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("broker.id");
    let id_s = id.to_str().unwrap().to_string();
    let (st, _, err) = common::run_with_input(&["keygen", "--identity", &id_s], b"", WAIT);
    assert!(st.success(), "{err}");
    let authorized = format!("{id_s}.pub");
    let start = || {
        let (server, _, web, url) =
            keyed_web_server(&["--identity", &id_s, "--authorized", &authorized]);
        let token = url
            .rsplit_once("token=")
            .expect("a token in the login URL")
            .1;
        (server, web.clone(), token.to_string())
    };
    let (first, web, token) = start();
    assert_eq!(token.len(), 64, "{token}");
    let own = format!("http://{web}");
    let origin = [("origin", own.as_str())];
    assert_eq!(open(&web, "", &origin).err(), Some(401), "no token");
    let mut ws = open(&web, &format!("?token={token}"), &origin).expect("the token opens it");
    ws.send(Message::text("/nick ida")).unwrap();
    wait_msg(&mut ws, "own rename", |m| {
        m.ends_with("is now known as ida")
    });
    stop(&first);
    drop(first);
    // The same identity gives the same token: a page's saved login keeps working.
    let (_second, _, again) = start();
    assert_eq!(again, token);
}

#[test]
fn every_response_carries_the_policy_and_foreign_pages_are_refused() {
    let (_server, _chat, web) = web_server(&[]);
    for (path, kind) in [
        ("/", "text/html"),
        ("/?name=ann&room=dev", "text/html"),
        ("/app.js", "text/javascript"),
        ("/lines.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/icon.svg", "image/svg+xml"),
    ] {
        let (status, head, body) = get(&web, path);
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{path}: {head}"
        );
        assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self'"));
        assert!(head.contains("x-content-type-options: nosniff"));
        assert!(!body.is_empty());
    }
    let (status, head, _) = get(&web, "/nothing-here");
    assert_eq!(status, 404);
    assert!(head.contains("content-security-policy"));
    // The page has no inline script or handler for the policy to forbid.
    let (_, _, html) = get(&web, "/");
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap().to_ascii_lowercase();
        assert!(
            !tag.starts_with("script") || tag.contains("src="),
            "inline script: <{tag}>"
        );
        assert!(
            !tag.split_whitespace().any(|a| a.starts_with("on")),
            "inline handler: <{tag}>"
        );
        assert!(!tag.starts_with("style"), "inline style sheet: <{tag}>");
    }
    for script in ["/app.js", "/lines.js"] {
        let (_, _, js) = get(&web, script);
        assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
    }

    // Only the page's own origin, by a loopback name, may open the WebSocket.
    let own = format!("http://{web}");
    assert!(open(&web, "", &[("origin", &own)]).is_ok());
    assert_eq!(
        open(&web, "", &[("origin", "http://evil.example")]).err(),
        Some(403)
    );
    let port = web.rsplit_once(':').unwrap().1;
    let rebound = format!("evil.example:{port}");
    assert_eq!(
        open(
            &web,
            "",
            &[("host", &rebound), ("origin", &format!("http://{rebound}"))]
        )
        .err(),
        Some(403)
    );
    let localhost = format!("localhost:{port}");
    assert!(
        open(
            &web,
            "",
            &[
                ("host", &localhost),
                ("origin", &format!("http://{localhost}"))
            ]
        )
        .is_ok()
    );
}

#[test]
fn beyond_loopback_a_page_without_a_key_is_warned_about() {
    let mut p = Proc::spawn(
        bin(),
        &[
            "serve",
            "chat",
            "--listen",
            "127.0.0.1:0",
            "--web",
            "0.0.0.0:0",
        ],
    );
    p.wait_stderr("chat-web page http://127.0.0.1:", WAIT);
    stop(&p);
    let (_, _, err) = p.finish(WAIT);
    assert!(err.contains("chat page open to anyone"), "{err}");
}

/// Sends SIGTERM to a server started as a [`Proc`].
fn stop(p: &Proc) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a child we started and have not reaped.
    unsafe {
        libc::kill(p.child.id() as i32, libc::SIGTERM);
    }
}

#[test]
fn with_a_key_the_websocket_needs_the_token_from_the_login_url() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chat.key");
    let (st, _, err) = common::run_with_input(&["keygen", key.to_str().unwrap()], b"", WAIT);
    assert!(st.success(), "{err}");
    let key = key.to_str().unwrap();
    let (_server, chat, web, url) = keyed_web_server(&["--key", key]);
    assert!(url.starts_with(&format!("http://{web}/?token=")), "{url}");
    let token = url.rsplit_once("token=").unwrap().1.to_string();

    // The token is HMAC-SHA256(key, "taojie web token"): the same on every start.
    let bytes = std::fs::read(key).unwrap();
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&bytes[..bytes.len() - 1]).unwrap();
    mac.update(b"taojie web token");
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(token, want);

    let own = format!("http://{web}");
    let origin = [("origin", own.as_str())];
    assert_eq!(open(&web, "", &origin).err(), Some(401), "no token");
    let wrong = format!("?token={}", "0".repeat(64));
    assert_eq!(open(&web, &wrong, &origin).err(), Some(401), "wrong token");
    assert_eq!(
        open(&web, "?token=abc", &origin).err(),
        Some(401),
        "short token"
    );
    let right = format!("?token={token}");
    assert_eq!(
        open(&web, &right, &[("origin", "http://evil.example")]).err(),
        Some(403),
        "token from a foreign page"
    );

    let mut dora = Client::taojie(&chat, "dora", &["--key", key]);
    dora.wait_for("own welcome", welcomed("dora"));
    let mut wes = open(&web, &right, &origin).expect("the token opens the websocket");
    wes.send(Message::text("/nick wes")).unwrap();
    wes.send(Message::text("hello from a keyed page")).unwrap();
    dora.wait_line("<wes> hello from a keyed page");
    dora.send("hello wes");
    wait_msg(&mut wes, "dora's line", |m| m == "<dora> hello wes");
}

/// The login URL a keyed server prints, opened in Chromium: the page joins with the token,
/// and its line reaches a keyed TCP member.
#[test]
fn in_chromium_the_login_url_of_a_keyed_server_joins() {
    if !need::browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chat.key");
    let (st, _, err) = common::run_with_input(&["keygen", key.to_str().unwrap()], b"", WAIT);
    assert!(st.success(), "{err}");
    let key = key.to_str().unwrap();
    let (_server, chat, _web, url) = keyed_web_server(&["--key", key]);
    let mut dora = Client::taojie(&chat, "dora", &["--key", key]);
    dora.wait_for("welcome as dora", welcomed("dora"));
    let (status, out, err) = run_program(
        "python3",
        &[
            &peer_script("web_chat.py"),
            "login",
            &url,
            "kim",
            &artifacts(),
        ],
        b"",
        WAIT * 8,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.trim_end() == "ok",
        "the login URL in Chromium (tests/peers/web_chat.py login):\n{out}{err}"
    );
    dora.wait_line("<kim> hello with a token from kim");
}

#[test]
fn in_chromium_pages_and_nc_chat_markup_stays_text_and_pages_reconnect() {
    if !need::browser() || !need::tool("nc") {
        return;
    }
    let mut args = vec!["chat".to_string(), bin().to_string(), artifacts()];
    for name in ["ann", "ben", "nora"] {
        args.push(format!("{name}={}", taojie::tty::colour::of(name)));
    }
    let script = peer_script("web_chat.py");
    let mut argv: Vec<&str> = vec![&script];
    argv.extend(args.iter().map(String::as_str));
    let (status, out, err) = run_program("python3", &argv, b"", WAIT * 12);
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.trim_end() == "ok",
        "the page in Chromium (tests/peers/web_chat.py chat):\n{out}{err}"
    );
}

/// Where screenshots go for a person to look at: target/test-artifacts.
fn artifacts() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_string()
}
