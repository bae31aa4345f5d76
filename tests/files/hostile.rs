//! Hostile names in both directions, escaping, wrong keys and the server's modes.
use super::wire::{self, Wire};
use super::*;

#[tokio::test]
async fn hostile_names_are_refused_and_nothing_lands_outside_the_root() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let outside = fx.p("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, fx.p("root/evil")).unwrap();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    let mut t = wire::client(&srv.addr("files", "tcp"), &fx.p("key")).await;
    for name in [
        "../x",
        "/etc/x",
        "a/../../x",
        "C:\\x",
        "C:x",
        "a\0b",
        "evil/x",
        "evil/secret",
        "",
    ] {
        let header = FileHeader {
            name: name.into(),
            size: 5,
            mode: 0o644,
            mtime_ns: 0,
        };
        t.send_control(&Msg::PutFile {
            header,
            overwrite: true,
            fresh: false,
        })
        .await
        .unwrap();
        match t.recv_control::<Msg>().await.unwrap() {
            Msg::Refuse { message } => assert!(!message.is_empty()),
            other => panic!("{name:?} accepted: {other:?}"),
        }
    }
    // A declared size no disk holds is refused before a byte moves.
    let header = FileHeader {
        name: "huge".into(),
        size: 1 << 62,
        mode: 0o644,
        mtime_ns: 0,
    };
    t.send_control(&Msg::PutFile {
        header,
        overwrite: false,
        fresh: false,
    })
    .await
    .unwrap();
    match t.recv_control::<Msg>().await.unwrap() {
        Msg::NoSpace { detail, kept } => {
            assert!(detail.contains("free") && kept == 0, "{detail} {kept}")
        }
        other => panic!("a 4 EiB upload was accepted: {other:?}"),
    }
    assert!(!fx.p("root/huge").exists() && !fx.p("root/.huge.taojie-part").exists());
    for name in ["../x", "/etc/passwd", "evil/secret", "evil"] {
        t.send_control(&Msg::Get {
            names: vec![name.into()],
        })
        .await
        .unwrap();
        assert!(
            matches!(t.recv_control::<Msg>().await.unwrap(), Msg::Error { .. }),
            "{name}"
        );
        assert_eq!(t.recv_control::<Msg>().await.unwrap(), Msg::End);
    }
    for dir in ["..", "/etc", "evil"] {
        t.send_control(&Msg::Ls { dir: dir.into() }).await.unwrap();
        assert!(
            matches!(t.recv_control::<Msg>().await.unwrap(), Msg::Error { .. }),
            "{dir}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    assert!(!fx.p("x").exists() && !fx.p("root/x").exists());
}

#[tokio::test]
async fn the_client_refuses_hostile_names_from_a_server() {
    // A fake server that offers `../escape` must not get a byte written outside -o DIR.
    let fx = Fixture::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let key = taojie::auth::Key::load(&fx.p("key")).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let auth = taojie::secure::ServerAuth {
            psk: Some(key),
            ..Default::default()
        };
        let (s, _) = taojie::secure::server(s, &auth).await.unwrap();
        let mut t = taojie::framing::FramedStream::new(s);
        taojie::framing::hello::server(&mut t, "files")
            .await
            .unwrap();
        let _: Msg = t.recv_control().await.unwrap();
        let header = FileHeader {
            name: "../escape".into(),
            size: 3,
            mode: 0o644,
            mtime_ns: 0,
        };
        t.send_control(&Msg::File { header }).await.unwrap();
        let answer: Msg = t.recv_control().await.unwrap();
        t.send_control(&Msg::End).await.unwrap();
        answer
    });
    let (key, out) = (fx.s("key"), fx.s("out"));
    let (st, _, err) = tokio::task::spawn_blocking(move || {
        let args = ["get", &addr, "x", "-o", &out, "--key", &key];
        run_with_input(&args, b"", LIMIT)
    })
    .await
    .unwrap();
    assert!(!st.success());
    assert!(err.contains("bad name"), "{err}");
    assert!(matches!(server.await.unwrap(), Msg::Refuse { .. }));
    assert!(!fx.p("escape").exists());
}

#[test]
fn the_wrong_key_lists_reads_and_writes_nothing() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    std::fs::write(fx.p("root/secret"), b"s").unwrap();
    std::fs::write(fx.p("src/f"), b"f").unwrap();
    let wrong = fx.s("wrong");
    let (src, out) = (fx.s("src/f"), fx.s("out"));
    for args in [
        vec!["ls", &addr, "--key", &wrong],
        vec!["get", &addr, "secret", "-o", &out, "--key", &wrong],
        vec!["put", &addr, &src, "--key", &wrong],
    ] {
        let (st, stdout, err) = run_with_input(&args, b"", LIMIT);
        assert!(!st.success(), "{args:?}");
        assert!(err.contains("wrong key"), "{err}");
        assert!(!err.contains("retry"), "a refusal is not retried: {err}");
        assert!(!String::from_utf8_lossy(&stdout).contains("secret"));
    }
    assert_eq!(std::fs::read_dir(fx.p("out")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(fx.p("root")).unwrap().count(), 1);
}

/// Nothing listening at the first attempt is a wrong address, not a break: said at once,
/// without the retries a connection that broke would get.
#[test]
fn a_refused_first_connection_is_not_retried() {
    let fx = Fixture::new();
    std::fs::write(fx.p("src/f"), b"f").unwrap();
    // Bound and not listening: refused, and no one else takes the port meanwhile.
    let (_hold, addr) = crate::common::ports::refused_tcp();
    let addr = addr.to_string();
    // The default --retries: a retry would say so on stderr (how fast it gives up is no
    // test's business; that it does not retry is).
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/f")]);
    assert!(
        !ok && err.contains("cannot connect") && !err.contains("retry"),
        "{err}"
    );
}

#[test]
fn read_only_and_upload_only_say_no() {
    let fx = Fixture::new();
    std::fs::write(fx.p("src/f"), b"f").unwrap();
    std::fs::write(fx.p("root/g"), b"g").unwrap();
    let ro = fx.serve(&["--read-only"]);
    let (ok, _, err) = fx.run(&["put", &ro.addr("files", "tcp"), &fx.s("src/f")]);
    assert!(!ok && err.contains("read-only"), "{err}");
    let uo = fx.serve(&["--upload-only"]);
    let (ok, _, err) = fx.run(&["ls", &uo.addr("files", "tcp")]);
    assert!(!ok && err.contains("upload-only"), "{err}");
    let (ok, _, err) = fx.run(&["get", &uo.addr("files", "tcp"), "g", "-o", &fx.s("out")]);
    assert!(!ok && err.contains("upload-only"), "{err}");
    assert!(!fx.p("root/f").exists() && !fx.p("out/g").exists());
}

#[test]
fn a_server_without_a_key_refuses_to_start_unless_told_on_loopback() {
    let fx = Fixture::new();
    let root = fx.s("root");
    let (st, _, err) = run_with_input(
        &["serve", "files", "--listen", "127.0.0.1:0", "--root", &root],
        b"",
        LIMIT,
    );
    assert!(!st.success() && err.contains("--key"), "{err}");
    let mut child = crate::common::command(bin())
        .args([
            "serve",
            "files",
            "--listen",
            "0.0.0.0:0",
            "--root",
            &root,
            "--insecure-no-auth",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(30)).expect("exits");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!st.success());
    assert!(
        err.contains("refusing to run files without a key on 0.0.0.0:0"),
        "{err}"
    );
}

#[test]
fn control_characters_in_names_never_reach_the_terminal_raw() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let evil = "a\x1b]0;pwned\x07\x1b[2Jb";
    std::fs::write(fx.p("root").join(evil), b"x").unwrap();
    let (ok, out, err) = fx.run(&["ls", &addr]);
    assert!(ok, "{err}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(out.contains("\\u{1b}"), "{out:?}");
    // Such a name is never stored nor sent: asked for, it is refused, and the refusal that
    // names it is escaped too.
    let (ok, _, err) = fx.run(&["get", &addr, evil, "-o", &fx.s("out")]);
    assert!(!ok);
    assert!(
        !err.contains('\x1b') && err.contains("control character"),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(fx.p("out")).unwrap().count(), 0);
}

/// A server's listing can carry any bytes in any field: `ls` escapes them all, the kind as
/// much as the name, so no server can clear the screen or fake the listing.
#[tokio::test(flavor = "multi_thread")]
async fn ls_escapes_every_field_a_server_sends() {
    let fx = Fixture::new();
    let (addr, server) = wire::server(&fx.p("key"), |mut t: Wire| async move {
        let Ok(Msg::Ls { .. }) = t.recv_control::<Msg>().await else {
            return;
        };
        let entries = vec![taojie::files::protocol::Entry {
            name: "a\x1b[2Jname".into(),
            kind: "\x1b[2J\x1b[Hfile\u{202e}".into(),
            size: 1,
            mtime: 0,
        }];
        let _ = t.send_control(&Msg::Entries { entries }).await;
        let _ = t.send_control(&Msg::End).await;
    })
    .await;
    let key = fx.s("key");
    let (st, out, err) = tokio::task::spawn_blocking(move || {
        run_with_input(&["ls", &addr, "--key", &key], b"", LIMIT)
    })
    .await
    .unwrap();
    let _ = server.await;
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(st.success(), "{err}");
    assert!(
        !out.contains('\x1b') && !out.contains('\u{202e}'),
        "{out:?}"
    );
    assert!(out.contains("\\u{1b}[2J\\u{1b}[Hfile"), "{out:?}");
}

/// Names a server stores may not hold control characters (newline, ESC, DEL, C1) nor
/// bidirectional overrides (U+202A-U+202E, U+2066-U+2069): refused with a clear error, and a
/// refused upload creates none of the directories its name leads through.
#[tokio::test]
async fn unprintable_names_are_refused_and_refusals_create_no_directories() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let mut t = wire::client(&srv.addr("files", "tcp"), &fx.p("key")).await;
    for name in [
        "new/a\nb",
        "new/a\x1b[31mb",
        "new/a\x7fb",
        "new/a\u{85}b",
        "new/invoice\u{202e}fdp.exe",
        "new/a\u{2066}b",
        "new\u{2069}/b",
        "new/\u{202a}",
    ] {
        let offer = Msg::PutFile {
            header: wire::header(name, b"x", 0o644),
            overwrite: false,
            fresh: false,
        };
        t.send_control(&offer).await.unwrap();
        match t.recv_control::<Msg>().await.unwrap() {
            Msg::Refuse { message } => assert!(
                message.contains("control character") || message.contains("bidirectional"),
                "{name:?}: {message}"
            ),
            other => panic!("{name:?} accepted: {other:?}"),
        }
    }
    // Refused for its size after the name passed: still nothing made on the way.
    let deep = format!("{}/huge", vec!["d"; 200].join("/"));
    for name in [deep.as_str(), "new/sub/huge"] {
        let header = FileHeader {
            size: 1 << 62,
            ..wire::header(name, b"", 0o644)
        };
        let offer = Msg::PutFile {
            header,
            overwrite: false,
            fresh: false,
        };
        t.send_control(&offer).await.unwrap();
        let answer = t.recv_control::<Msg>().await.unwrap();
        assert!(matches!(answer, Msg::NoSpace { .. }), "{answer:?}");
    }
    let left: Vec<_> = std::fs::read_dir(fx.p("root")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
