//! `taojie connect --proxy` through real proxies: taojie's own (SOCKS5 and CONNECT, with a
//! login), Debian's microsocks (SOCKS5, with a login) and tinyproxy (CONNECT), to a taojie
//! echo server; and the errors a client sees when a proxy refuses it.
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::need;
use crate::common::{Proc, Server, bin, run_with_input};
use crate::nginx::free_port;
use crate::{proxy, users_file};

/// A peer proxy, killed by its PID when dropped.
pub struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program ARGS` listening on `port` and waits (10 s at most) until it accepts.
pub fn start_peer(program: &str, args: &[&str], port: u16) -> Peer {
    let mut child = Peer(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "{program} exited");
        assert!(Instant::now() < deadline, "{program} not accepting in 10 s");
        thread::sleep(Duration::from_millis(20));
    }
    child
}

/// `taojie connect --proxy URL TARGET`: one line there and back, stdin held open until the
/// echo is in (microsocks ends both ways at the client's half-close).
pub fn echo_through(url: &str, target: &str) {
    let mut p = Proc::spawn(bin(), &["connect", "--proxy", url, target]);
    p.feed(b"through\n".to_vec());
    let got = p.wait_stdout(8, Duration::from_secs(10)).to_vec();
    p.close_stdin();
    let (status, _, err) = p.finish(Duration::from_secs(10));
    assert_eq!(got, b"through\n", "{url} to {target}: {err}");
    assert!(status.success(), "{url}: {err}");
    assert!(
        !err.contains("s3cret") && !err.contains("pw9"),
        "a password printed: {err}"
    );
}

pub fn echo_server() -> (Server, String) {
    let s = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let addr = s.addr("echo", "tcp");
    (s, addr)
}

#[test]
fn taojie_connect_through_taojies_proxy_with_a_login() {
    let (_echo, target) = echo_server();
    let port = target.rsplit_once(':').unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_p, addr) = proxy(
        "127.0.0.1:0",
        &[
            "--allow",
            "localhost",
            "--allow",
            "127.0.0.1",
            "--users",
            &users,
        ],
    );
    for scheme in ["socks5", "socks5h", "http"] {
        echo_through(
            &format!("{scheme}://ann:s3cret%20pass@{addr}"),
            &format!("localhost:{port}"),
        );
    }
    // Refusals are one line naming the proxy, never its password.
    for (url, want) in [
        (
            format!("socks5h://ann:wrong@{addr}"),
            "refused the user name and password",
        ),
        (format!("http://{addr}"), "wants a user name and password"),
        (
            format!("socks5h://ann:s3cret%20pass@{addr}"),
            "not allowed by ruleset",
        ),
    ] {
        let to = if url.contains("s3cret") {
            "[::1]:9"
        } else {
            target.as_str()
        };
        let (status, _, err) = run_with_input(
            &["connect", "--proxy", &url, to],
            b"",
            Duration::from_secs(20),
        );
        assert!(!status.success());
        assert!(
            err.contains(want) && !err.contains("s3cret") && !err.contains("wrong"),
            "{url}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn taojie_connect_through_microsocks_and_tinyproxy() {
    let (_echo, target) = echo_server();
    let port = target.rsplit_once(':').unwrap().1;
    if need::tool("microsocks") {
        let p = free_port();
        let ps = p.to_string();
        let _ms = start_peer(
            "microsocks",
            &["-i", "127.0.0.1", "-p", &ps, "-u", "ann", "-P", "pw9"],
            p,
        );
        echo_through(
            &format!("socks5h://ann:pw9@127.0.0.1:{p}"),
            &format!("localhost:{port}"),
        );
        echo_through(&format!("socks5://ann:pw9@127.0.0.1:{p}"), &target);
        let (status, _, err) = run_with_input(
            &[
                "connect",
                "--proxy",
                &format!("socks5h://ann:bad@127.0.0.1:{p}"),
                &target,
            ],
            b"",
            Duration::from_secs(20),
        );
        assert!(
            !status.success() && err.contains("refused the user name"),
            "{err}"
        );
    }
    if need::tool("tinyproxy") {
        let dir = tempfile::tempdir().unwrap();
        let p = free_port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!("Port {p}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogLevel Error\n"),
        )
        .unwrap();
        let _tp = start_peer("tinyproxy", &["-d", "-c", conf.to_str().unwrap()], p);
        echo_through(&format!("http://127.0.0.1:{p}"), &target);
    }
}

#[test]
fn exec_put_get_and_ls_go_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let key = key.to_str().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (status, _, err) = run_with_input(&["keygen", key], b"", Duration::from_secs(10));
    assert!(status.success(), "{err}");
    let exec = Server::start(
        &["serve", "exec", "--listen", "127.0.0.1:0", "--key", key],
        1,
    );
    let files = Server::start(
        &[
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--key",
            key,
            "--root",
            root.to_str().unwrap(),
        ],
        1,
    );
    let (mut p, addr) = proxy("127.0.0.1:0", &["--allow", "localhost"]);
    let via = format!("socks5h://{addr}");
    let by_name = |a: String| format!("localhost:{}", a.rsplit_once(':').unwrap().1);
    let exec_at = by_name(exec.addr("exec", "tcp"));
    let files_at = by_name(files.addr("files", "tcp"));
    let (status, out, err) = run_with_input(
        &[
            "exec", &exec_at, "--key", key, "--proxy", &via, "--", "echo", "proxied",
        ],
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "proxied\n");
    let file = dir.path().join("note.txt");
    std::fs::write(&file, "through the proxy\n").unwrap();
    let (status, _, err) = run_with_input(
        &[
            "put",
            &files_at,
            "--key",
            key,
            "--proxy",
            &format!("http://{addr}"),
            "-q",
            file.to_str().unwrap(),
        ],
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(root.join("note.txt")).unwrap(),
        "through the proxy\n"
    );
    let (status, out, err) = run_with_input(
        &["ls", &files_at, "--key", key, "--proxy", &via],
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out).contains("note.txt"));
    let back = dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let (status, _, err) = run_with_input(
        &[
            "get",
            &files_at,
            "note.txt",
            "--key",
            key,
            "--proxy",
            &via,
            "-q",
            "-o",
            back.to_str().unwrap(),
        ],
        b"",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(back.join("note.txt")).unwrap(),
        "through the proxy\n"
    );
    // Each went through the proxy: its log line names the destination by name.
    p.wait_stderr(&format!("target={exec_at} "));
}

#[test]
fn ncat_goes_through_taojies_proxy_by_socks5_and_connect() {
    if !need::tool("ncat") {
        return;
    }
    let (_echo, target) = echo_server();
    let (eh, ep) = target.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path());
    let (_p, addr) = proxy("127.0.0.1:0", &["--allow", "127.0.0.1", "--users", &users]);
    for kind in ["socks5", "http"] {
        let mut p = Proc::spawn(
            "ncat",
            &[
                "--proxy",
                &addr,
                "--proxy-type",
                kind,
                "--proxy-auth",
                "ann:s3cret pass",
                eh,
                ep,
            ],
        );
        p.feed(b"ncat line\n".to_vec());
        let got = p.wait_stdout(10, Duration::from_secs(10)).to_vec();
        p.close_stdin();
        let (_, _, err) = p.finish(Duration::from_secs(10));
        assert_eq!(got, b"ncat line\n", "ncat --proxy-type {kind}: {err}");
    }
}

#[test]
fn chat_joins_its_broker_through_the_proxy() {
    use std::io::{BufRead, BufReader, Write};
    let broker = Server::start(&["serve", "chat", "--listen", "127.0.0.1:0"], 1);
    let at = broker.addr("chat", "tcp");
    let port = at.rsplit_once(':').unwrap().1;
    let (mut p, addr) = proxy("127.0.0.1:0", &["--allow", "localhost"]);
    // bob: a plain line client, straight to the broker.
    let bob = TcpStream::connect(&at).unwrap();
    bob.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&bob).write_all(b"/nick bob\n").unwrap();
    let mut lines = BufReader::new(&bob);
    let to = format!("localhost:{port}");
    let url = format!("socks5h://{addr}");
    let mut ann = Proc::spawn(bin(), &["chat", &to, "--name", "ann", "--proxy", &url]);
    ann.feed(b"hi bob\n".to_vec());
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).unwrap_or(0);
        assert!(n > 0, "bob saw {seen:?}");
        if line.contains("<ann> hi bob") {
            break;
        }
        seen.push(line);
    }
    ann.close_stdin();
    let (status, _, err) = ann.finish(Duration::from_secs(10));
    assert!(status.success(), "{err}");
    p.wait_stderr(&format!("target={to} "));
}

#[test]
fn forward_reaches_its_target_through_the_proxy() {
    let (_echo, target) = echo_server();
    let port = target.rsplit_once(':').unwrap().1;
    let (mut p, addr) = proxy("127.0.0.1:0", &["--allow", "localhost"]);
    let to = format!("localhost:{port}");
    for url in [format!("socks5h://{addr}"), format!("http://{addr}")] {
        let fwd = Server::start(&["forward", "127.0.0.1:0", &to, "--proxy", &url], 1);
        let listen = fwd.addr("forward", "tcp");
        let (status, out, err) = run_with_input(
            &["connect", &listen],
            b"forwarded\n",
            Duration::from_secs(20),
        );
        assert!(status.success(), "{url}: {err}");
        assert_eq!(out, b"forwarded\n", "{url}");
        p.wait_stderr(&format!("target={to} "));
    }
}
