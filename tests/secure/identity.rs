//! Identity keys, as with ssh: an authorized client gets in, a stranger is refused, a key
//! taken off the list is refused after SIGHUP, and a server whose key changed is refused by a
//! client that met it before.
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::common::{Server, bin, wait_timeout};
use super::{Fixture, LIMIT};

/// `taojie ARGS` with `XDG_CONFIG_HOME` (where known_hosts lives) set: (success, stdout, stderr).
fn run(fx: &Fixture, args: &[&str]) -> (bool, String, String) {
    let child = crate::common::command(bin())
        .args(args)
        .env("XDG_CONFIG_HOME", fx.p("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    super::common::kill_after(&child, LIMIT, "taojie");
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn exec_as(fx: &Fixture, addr: &str, who: &str) -> (bool, String, String) {
    let id = fx.s(who);
    run(
        fx,
        &["exec", addr, "--identity", &id, "--", "echo", "hello"],
    )
}

fn serve_with(fx: &Fixture, identity: &str, listen: &str) -> Server {
    let (id, _) = fx.identity(identity);
    let list = fx.s("authorized");
    Server::start(
        &[
            "serve",
            "exec",
            "--listen",
            listen,
            "--identity",
            &id,
            "--authorized",
            &list,
        ],
        1,
    )
}

#[test]
fn authorized_keys_get_in_strangers_and_removed_keys_do_not() {
    let fx = Fixture::new();
    let (_, ann) = fx.identity("ann");
    let (_, bob) = fx.identity("bob");
    fx.identity("eve");
    std::fs::write(fx.p("authorized"), format!("# the team\n{ann}\n\n{bob}\n")).unwrap();
    let server = serve_with(&fx, "server-id", "127.0.0.1:0");
    let addr = server.addr("exec", "tcp");

    let (ok, out, err) = exec_as(&fx, &addr, "ann");
    assert!(ok && out == "hello\n", "{err}");
    assert!(
        err.contains("first contact with"),
        "the pinning is said: {err}"
    );
    let known = std::fs::read_to_string(fx.p("config/taojie/known_hosts")).unwrap();
    assert!(
        known.starts_with(&format!("{addr} taojie-x25519 ")),
        "{known}"
    );
    let (ok, _, err) = exec_as(&fx, &addr, "ann");
    assert!(ok && !err.contains("first contact"), "{err}");

    let (ok, _, err) = exec_as(&fx, &addr, "eve");
    assert!(!ok);
    assert!(err.contains("not in its authorized keys"), "{err}");

    // A shared key where the server takes identities only: said plainly.
    let key = fx.key("shared.key");
    let (ok, _, err) = run(&fx, &["exec", &addr, "--key", &key, "--", "true"]);
    assert!(
        !ok && err.contains("takes identity keys (--identity)"),
        "{err}"
    );

    // bob is taken off the list; SIGHUP makes the server read it again.
    std::fs::write(fx.p("authorized"), format!("{ann}\n")).unwrap();
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, _, err) = exec_as(&fx, &addr, "bob");
        if !ok {
            assert!(err.contains("not in its authorized keys"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "bob still gets in after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, _, err) = exec_as(&fx, &addr, "ann");
    assert!(ok, "ann is still on the list: {err}");
}

#[test]
fn a_server_whose_key_changed_is_refused() {
    let fx = Fixture::new();
    let (_, ann) = fx.identity("ann");
    std::fs::write(fx.p("authorized"), format!("{ann}\n")).unwrap();
    let mut first = serve_with(&fx, "server-one", "127.0.0.1:0");
    let addr = first.addr("exec", "tcp");
    let (ok, _, err) = exec_as(&fx, &addr, "ann");
    assert!(ok, "{err}");
    first.terminate(LIMIT).expect("the first server stops");

    // Another server, another key, the same address.
    let second = serve_with(&fx, "server-two", &addr);
    let (ok, out, err) = exec_as(&fx, &addr, "ann");
    assert!(!ok && out.is_empty());
    assert!(
        err.contains("changed its identity key") && err.contains("known_hosts"),
        "{err}"
    );
    drop(second);
}

#[test]
fn keygen_identity_writes_a_private_file_and_a_public_line() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let (path, line) = fx.identity("me");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "taojie-x25519");
    assert_eq!(words[1].len(), 44, "32 bytes of base64: {line}");
    // Never overwritten.
    let before = std::fs::read(&path).unwrap();
    let mut child = crate::common::command(bin())
        .args(["keygen", "--identity", &path])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, LIMIT).unwrap();
    assert!(!status.success());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// `run` with `input` on stdin, bounded.
fn run_input(fx: &Fixture, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut cmd = crate::common::command(bin());
    cmd.args(args).env("XDG_CONFIG_HOME", fx.p("config"));
    let (st, out, err) = super::common::run_command(&mut cmd, input, LIMIT);
    (
        st.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// Identity keys beyond exec: a files server, a chat broker and the encrypted pipe each let
/// in the key their list names and refuse a stranger's, with the same words as exec.
#[test]
fn identity_keys_serve_files_chat_and_the_pipe() {
    let fx = Fixture::new();
    let (_, ann) = fx.identity("ann");
    fx.identity("eve");
    let (server_id, _) = fx.identity("server");
    std::fs::write(fx.p("authorized"), format!("{ann}\n")).unwrap();
    let (ann_id, eve_id, list) = (fx.s("ann"), fx.s("eve"), fx.s("authorized"));
    let with_ids = ["--identity", &server_id, "--authorized", &list];

    // Files: put, ls and get as ann; eve gets nothing.
    std::fs::create_dir(fx.p("root")).unwrap();
    std::fs::write(fx.p("note.txt"), b"ann's note\n").unwrap();
    let root = fx.s("root");
    let mut args = vec!["serve", "files", "--listen", "127.0.0.1:0", "--root", &root];
    args.extend(with_ids);
    let files = Server::start(&args, 1);
    let addr = files.addr("files", "tcp");
    let (ok, _, err) = run(
        &fx,
        &["put", &addr, &fx.s("note.txt"), "--identity", &ann_id],
    );
    assert!(ok, "put as ann: {err}");
    assert_eq!(
        std::fs::read(fx.p("root/note.txt")).unwrap(),
        b"ann's note\n"
    );
    let (ok, out, err) = run(&fx, &["ls", &addr, "--identity", &ann_id]);
    assert!(ok && out.contains("note.txt"), "ls as ann: {out}{err}");
    std::fs::create_dir(fx.p("got")).unwrap();
    let got = fx.s("got");
    let (ok, _, err) = run(
        &fx,
        &["get", &addr, "note.txt", "-o", &got, "--identity", &ann_id],
    );
    assert!(ok, "get as ann: {err}");
    assert_eq!(
        std::fs::read(fx.p("got/note.txt")).unwrap(),
        b"ann's note\n"
    );
    let (ok, out, err) = run(&fx, &["ls", &addr, "--identity", &eve_id]);
    assert!(!ok && out.is_empty(), "ls as eve: {out}");
    assert!(err.contains("not in its authorized keys"), "{err}");

    // Chat: ann's line reaches a member; eve is refused.
    let mut args = vec!["serve", "chat", "--listen", "127.0.0.1:0"];
    args.extend(with_ids);
    let chat = Server::start(&args, 1);
    let addr = chat.addr("chat", "tcp");
    let mut hearer = super::common::Proc::spawn(
        bin(),
        &["chat", &addr, "--name", "hearer", "--identity", &ann_id],
    );
    hearer.wait_stdout(1, LIMIT);
    let (ok, _, err) = run_input(
        &fx,
        &["chat", &addr, "--name", "ann", "--identity", &ann_id],
        b"hello with an identity\n",
    );
    assert!(ok, "chat as ann: {err}");
    while !String::from_utf8_lossy(&hearer.stdout).contains("<ann> hello with an identity") {
        assert!(
            hearer.more_stdout(LIMIT),
            "{:?}",
            String::from_utf8_lossy(&hearer.stdout)
        );
    }
    let (ok, out, err) = run_input(
        &fx,
        &["chat", &addr, "--name", "eve", "--identity", &eve_id],
        b"let me in\n",
    );
    assert!(!ok && !out.contains("hello"), "chat as eve: {out}");
    assert!(err.contains("not in its authorized keys"), "{err}");

    // The pipe: listen with identities, connect as ann (bytes both ways); eve is refused.
    let mut args = vec!["listen", "127.0.0.1:0"];
    args.extend(with_ids);
    let mut listen = super::common::Proc::spawn(bin(), &args);
    let line = listen.wait_stderr("listen tcp ", LIMIT);
    let addr = line.trim_start_matches("listen tcp ").to_string();
    let (ok, out, err) = run_input(&fx, &["connect", &addr, "--identity", &eve_id], b"eve\n");
    assert!(!ok && out.is_empty(), "connect as eve: {out}");
    assert!(err.contains("not in its authorized keys"), "{err}");
    listen.feed(b"to ann\n".to_vec());
    listen.close_stdin();
    let (ok, out, err) = run_input(
        &fx,
        &["connect", &addr, "--identity", &ann_id],
        b"from ann\n",
    );
    assert!(ok, "connect as ann: {err}");
    assert_eq!(out, "to ann\n");
    let (st, out, err) = listen.finish(LIMIT);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"from ann\n");
}
