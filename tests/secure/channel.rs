//! An eavesdropper and a meddler on the path: a capturing proxy between the real client and
//! the real server sees none of a command, its output or a file's contents, and whatever it
//! changes, leaves out or plays again runs and writes nothing (marker files prove it).
use super::common::{Server, run_with_input};
use super::{Fixture, LIMIT, Meddle, Proxy, contains};

fn exec_server(fx: &Fixture) -> Server {
    let key = fx.key("shared.key");
    Server::start(
        &["serve", "exec", "--listen", "127.0.0.1:0", "--key", &key],
        1,
    )
}

/// `taojie exec ADDR --key KEY -- argv`: (exit code, stdout, stderr).
fn exec(addr: &str, key: &str, argv: &[&str]) -> (i32, Vec<u8>, String) {
    let mut args = vec!["exec", addr, "--key", key, "--"];
    args.extend_from_slice(argv);
    let (st, out, err) = run_with_input(&args, b"", LIMIT);
    (st.code().unwrap_or(-1), out, err)
}

#[test]
fn an_eavesdropper_sees_no_command_no_output_and_no_file() {
    let fx = Fixture::new();
    let server = exec_server(&fx);
    let proxy = Proxy::start(&server.addr("exec", "tcp"), Meddle::Nothing);
    let key = fx.key("shared.key");
    let (code, out, err) = exec(
        &proxy.addr,
        &key,
        &[
            "sh",
            "-c",
            "echo OUTPUT-$((6*7))-MARK; echo ERROR-LINE-MARK >&2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"OUTPUT-42-MARK\n");
    assert!(err.contains("ERROR-LINE-MARK"));

    let root = fx.p("root");
    std::fs::create_dir(&root).unwrap();
    let files = Server::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().unwrap(),
            "--key",
            &key,
        ],
        1,
    );
    let fproxy = Proxy::start(&files.addr("files", "tcp"), Meddle::Nothing);
    let body: Vec<u8> = b"FILE-CONTENT-MARK "
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect();
    std::fs::write(fx.p("secret.txt"), &body).unwrap();
    let (st, _, err) = run_with_input(
        &["put", &fproxy.addr, &fx.s("secret.txt"), "--key", &key],
        b"",
        LIMIT,
    );
    assert!(st.success(), "{err}");
    assert_eq!(std::fs::read(root.join("secret.txt")).unwrap(), body);

    let seen = [proxy.seen(), fproxy.seen()].concat();
    for secret in [
        &b"echo OUTPUT"[..],
        b"OUTPUT-42-MARK",
        b"ERROR-LINE-MARK",
        b"FILE-CONTENT-MARK",
        b"secret.txt",
        b"\"argv\"",
    ] {
        assert!(
            !contains(&seen, secret),
            "{:?} crossed the wire in the clear",
            String::from_utf8_lossy(secret)
        );
    }
    assert!(seen.len() > 1 << 20, "the file went through the proxy");
}

/// The other keyed services through the same eavesdropper: a keyed chat room (a line up
/// and down), the encrypted pipe (bytes both ways), a files get and ls (a file's bytes and a
/// listing), and exec with identity keys (XX) rather than the shared key.
#[test]
fn an_eavesdropper_sees_nothing_of_chat_the_pipe_get_ls_or_an_identity_session() {
    use super::common::{Proc, bin};
    let fx = Fixture::new();
    let key = fx.key("shared.key");
    let secrets: [&[u8]; 8] = [
        b"CHAT-LINE-MARK",
        b"chatter-name",
        b"PIPE-UP-MARK",
        b"PIPE-DOWN-MARK",
        b"GOT-FILE-MARK",
        b"listed-name-mark",
        b"IDENTITY-OUTPUT-MARK",
        b"\"hello\"",
    ];

    // Chat: one member says a line through the proxy, another hears it through the proxy.
    let chat = Server::start(
        &["serve", "chat", "--listen", "127.0.0.1:0", "--key", &key],
        1,
    );
    let cproxy = Proxy::start(&chat.addr("chat", "tcp"), Meddle::Nothing);
    let mut hearer = Proc::spawn(
        bin(),
        &["chat", &cproxy.addr, "--name", "hearer", "--key", &key],
    );
    hearer.wait_stdout(1, LIMIT);
    let (st, _, err) = run_with_input(
        &[
            "chat",
            &cproxy.addr,
            "--name",
            "chatter-name",
            "--key",
            &key,
        ],
        b"CHAT-LINE-MARK\n",
        LIMIT,
    );
    assert!(st.success(), "{err}");
    while !contains(&hearer.stdout, b"<chatter-name> CHAT-LINE-MARK") {
        assert!(
            hearer.more_stdout(LIMIT),
            "the line never came: {:?}",
            hearer.stdout
        );
    }

    // The pipe: taojie listen --key, taojie connect --key through the proxy.
    let mut listen = Proc::spawn(bin(), &["listen", "127.0.0.1:0", "--key", &key]);
    let line = listen.wait_stderr("listen tcp ", LIMIT);
    let pproxy = Proxy::start(line.trim_start_matches("listen tcp "), Meddle::Nothing);
    listen.feed(b"PIPE-DOWN-MARK\n".to_vec());
    listen.close_stdin();
    let (st, out, err) = run_with_input(
        &["connect", &pproxy.addr, "--key", &key],
        b"PIPE-UP-MARK\n",
        LIMIT,
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"PIPE-DOWN-MARK\n");
    let (st, out, err) = listen.finish(LIMIT);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"PIPE-UP-MARK\n");

    // Files: a get and an ls through the proxy.
    let root = fx.p("root");
    std::fs::create_dir_all(root.join("listed-name-mark")).unwrap();
    let body: Vec<u8> = b"GOT-FILE-MARK "
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect();
    std::fs::write(root.join("payload"), &body).unwrap();
    let files = Server::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().unwrap(),
            "--key",
            &key,
        ],
        1,
    );
    let fproxy = Proxy::start(&files.addr("files", "tcp"), Meddle::Nothing);
    let out_dir = fx.p("got");
    std::fs::create_dir(&out_dir).unwrap();
    let (st, _, err) = run_with_input(
        &[
            "get",
            &fproxy.addr,
            "payload",
            "-o",
            out_dir.to_str().unwrap(),
            "--key",
            &key,
        ],
        b"",
        LIMIT,
    );
    assert!(st.success(), "{err}");
    assert_eq!(std::fs::read(out_dir.join("payload")).unwrap(), body);
    let (st, listing, err) = run_with_input(&["ls", &fproxy.addr, "--key", &key], b"", LIMIT);
    assert!(st.success(), "{err}");
    assert!(contains(&listing, b"listed-name-mark"), "{listing:?}");

    // exec with identity keys.
    let (server_id, _) = fx.identity("server.id");
    let (client_id, client_pub) = fx.identity("client.id");
    std::fs::write(fx.p("authorized"), format!("{client_pub}\n")).unwrap();
    let exec = Server::start(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--identity",
            &server_id,
            "--authorized",
            &fx.s("authorized"),
        ],
        1,
    );
    let eproxy = Proxy::start(&exec.addr("exec", "tcp"), Meddle::Nothing);
    let (st, out, err) = run_with_input(
        &[
            "exec",
            &eproxy.addr,
            "--identity",
            &client_id,
            "--",
            "echo",
            "IDENTITY-OUTPUT-MARK",
        ],
        b"",
        LIMIT,
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"IDENTITY-OUTPUT-MARK\n");

    for (what, proxy) in [
        ("chat", &cproxy),
        ("the pipe", &pproxy),
        ("files", &fproxy),
        ("exec with identities", &eproxy),
    ] {
        let seen = proxy.seen();
        assert!(!seen.is_empty(), "nothing of {what} went through the proxy");
        for secret in secrets {
            assert!(
                !contains(&seen, secret),
                "{:?} of {what} crossed the wire in the clear",
                String::from_utf8_lossy(secret)
            );
        }
    }
    assert!(
        fproxy.seen().len() > 1 << 20,
        "the file went through the proxy"
    );
}

#[test]
fn a_changed_byte_runs_nothing() {
    let fx = Fixture::new();
    let server = exec_server(&fx);
    let key = fx.key("shared.key");
    // The client's stream: a 32-byte line, the Noise message (2 + 48 bytes), then records:
    // the hello, then the request.
    for (i, meddle) in [
        Meddle::Flip(32 + 2 + 20),        // inside the Noise message
        Meddle::Flip(32 + 50 + 2 + 5),    // inside the hello record
        Meddle::Flip(32 + 50 + 100 + 10), // further on: the request or what follows
        Meddle::Drop(1),                  // the hello record left out
        Meddle::Drop(2),                  // the request record left out
    ]
    .into_iter()
    .enumerate()
    {
        let proxy = Proxy::start(&server.addr("exec", "tcp"), meddle);
        let marker = fx.p(&format!("marker{i}"));
        let (code, _, err) = exec(&proxy.addr, &key, &["touch", marker.to_str().unwrap()]);
        assert_ne!(code, 0, "{meddle:?} went through: {err}");
        assert!(!marker.exists(), "{meddle:?}: the command ran");
        let last = err
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("taojie: ") && last.contains("error"),
            "{meddle:?}: {err}"
        );
    }
    // And the server serves on.
    let (code, out, _) = exec(&server.addr("exec", "tcp"), &key, &["echo", "ok"]);
    assert_eq!((code, out.as_slice()), (0, &b"ok\n"[..]));
}

#[test]
fn a_recorded_session_played_again_runs_nothing() {
    let fx = Fixture::new();
    let server = exec_server(&fx);
    let key = fx.key("shared.key");
    let proxy = Proxy::start(&server.addr("exec", "tcp"), Meddle::Nothing);
    let marker = fx.p("marker");
    let (code, _, err) = exec(&proxy.addr, &key, &["touch", marker.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();
    // Everything the client sent, sent again after the server's new banner.
    let recorded = proxy.sent_by_clients();
    let mut s = std::net::TcpStream::connect(server.addr("exec", "tcp")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let mut banner = [0u8; 32];
    std::io::Read::read_exact(&mut s, &mut banner).unwrap();
    std::io::Write::write_all(&mut s, &recorded).unwrap();
    // The server ends the replayed session (an end of stream or a reset), before any
    // command could run from it; a read that times out is a session left open.
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut s, &mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the replayed session was left open: {e}"),
    }
    assert!(
        !marker.exists(),
        "the replayed session ran its command again"
    );
}

#[test]
fn a_dropped_record_writes_nothing() {
    // An upload streams records one after another, so a record left out on the way is
    // noticed by the next one. (A record left out where the sender then waits for an answer
    // is noticed only when the wait times out: nothing more arrives to show the gap.)
    let fx = Fixture::new();
    let key = fx.key("shared.key");
    let root = fx.p("root");
    std::fs::create_dir(&root).unwrap();
    let files = Server::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().unwrap(),
            "--key",
            &key,
        ],
        1,
    );
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(fx.p("big.bin"), &body).unwrap();
    for which in [6, 20] {
        let proxy = Proxy::start(&files.addr("files", "tcp"), Meddle::Drop(which));
        let (st, _, err) = run_with_input(
            &["put", &proxy.addr, &fx.s("big.bin"), "--key", &key],
            b"",
            LIMIT,
        );
        assert!(
            !st.success(),
            "record {which} left out, and the upload went through"
        );
        assert!(err.contains("taojie: error"), "{err}");
        assert!(
            !root.join("big.bin").exists(),
            "record {which}: a file was put in place"
        );
    }
}

#[test]
fn a_classic_listener_beyond_loopback_says_it_is_not_encrypted() {
    let fx = Fixture::new();
    let key = fx.key("shared.key");
    let mut child = crate::common::command(super::common::bin())
        .args([
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--classic",
            "0.0.0.0:0",
            "--key",
            &key,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    super::common::kill_after(
        &child,
        std::time::Duration::from_secs(60),
        "taojie serve exec",
    );
    // Both address lines printed means start-up (and its warnings) is over.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(line.starts_with("exec"), "{line:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("NOT encrypted"), "{err}");
    assert_eq!(err.matches("NOT encrypted").count(), 1, "said once: {err}");
}
