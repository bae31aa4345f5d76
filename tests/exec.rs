//! `taojie serve exec` and `taojie exec` against the real binary: the seed's classic client,
//! the native client's streams and statuses, and hostile or unauthenticated peers.
mod common;
#[path = "exec/escape.rs"]
mod escape;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, bin, run_program, run_with_input, wait_timeout};
use sha2::{Digest, Sha256};

const LIMIT: Duration = Duration::from_secs(60);
const RAW_CLIENT: &str = include_str!("exec/raw_client.py");

/// A temp dir with a key made by `taojie keygen` and the raw Python client.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("exec.key");
        let (status, _, err) = run_with_input(&["keygen", key.to_str().unwrap()], b"", LIMIT);
        assert!(status.success(), "keygen: {err}");
        std::fs::write(dir.path().join("raw_client.py"), RAW_CLIENT).unwrap();
        Fixture { dir }
    }

    fn key(&self) -> String {
        self.path("exec.key")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// A second, different key.
    fn other_key(&self) -> String {
        let p = self.path("other.key");
        if !Path::new(&p).exists() {
            run_with_input(&["keygen", &p], b"", LIMIT);
        }
        p
    }

    /// `serve exec` with this key on a native and a classic port, plus `extra` flags.
    fn server(&self, extra: &[&str]) -> Server {
        let key = self.key();
        let mut args = vec![
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--classic",
            "127.0.0.1:0",
            "--key",
            &key,
        ];
        args.extend_from_slice(extra);
        Server::start(&args, 2)
    }

    /// `serve exec` with this key on a native port only (no `--classic`), plus `extra`.
    fn server_native(&self, extra: &[&str]) -> Server {
        let key = self.key();
        let mut args = vec!["serve", "exec", "--listen", "127.0.0.1:0", "--key", &key];
        args.extend_from_slice(extra);
        Server::start(&args, 1)
    }

    /// Runs the raw Python client in `mode`; returns its JSON report.
    fn raw(&self, addr: &str, mode: &str, args: &[&str]) -> serde_json::Value {
        let script = self.path("raw_client.py");
        let key = self.key();
        let mut all = vec![script.as_str(), addr, key.as_str(), mode];
        all.extend_from_slice(args);
        let (status, out, err) = run_program("python3", &all, b"", LIMIT);
        assert!(status.success(), "raw client {mode}: {err}");
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{mode}: {e}: {out:?}"))
    }
}

/// `taojie exec ADDR --key KEY [flags] -- argv` with `input` on stdin.
fn exec(addr: &str, key_flags: &[&str], argv: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut args = vec!["exec", addr];
    args.extend_from_slice(key_flags);
    args.push("--");
    args.extend_from_slice(argv);
    let (status, out, err) = run_with_input(&args, input, LIMIT);
    (status.code().unwrap_or(-1), out, err)
}

/// `taojie exec ADDR --key KEY -- argv`, to be spawned with the test's own stdio.
fn exec_command(addr: &str, key: &str, argv: &[&str]) -> Command {
    let mut cmd = crate::common::command(bin());
    cmd.args(["exec", addr, "--key", key, "--"]).args(argv);
    cmd
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Whether a process whose command line matches `pattern` (pgrep -f) exists.
fn running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Polls until `running(pattern) == want`, at most 10 s.
fn wait_running(pattern: &str, want: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if running(pattern) == want {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A sleep duration no other process on the machine uses, to find ours with pgrep.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}.{nanos:09}", 3000 + std::process::id() % 1000)
}

#[test]
fn the_seeds_client_runs_commands_back_to_back_on_one_connection() {
    if !crate::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let addr = server.addr("exec-classic", "tcp");
    let big = "head -c 10000000 /dev/zero | tr '\\0' a";
    let report = fx.raw(
        &addr,
        "classic",
        &["echo hello", "ls -l /", "ls /no/such/dir", big, "echo done"],
    );
    let answers = report["answers"].as_array().unwrap();
    assert_eq!(answers[0]["head"], "hello\n");
    assert!(
        answers[1]["head"].as_str().unwrap().starts_with("total"),
        "{report}"
    );
    assert!(
        answers[2]["head"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{report}"
    );
    assert_eq!(answers[3]["len"], 10_000_000);
    assert_eq!(answers[3]["sha256"], sha256_hex(&vec![b'a'; 10_000_000]));
    assert_eq!(answers[4]["head"], "done\n");
    assert_eq!(report["extra"], 0, "bytes beyond the last answer");
}

#[test]
fn exit_status_streams_and_stdin_cross_the_native_protocol() {
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let addr = server.addr("exec", "tcp");
    let key = fx.key();
    let k = ["--key", key.as_str()];

    let (code, out, err) = exec(
        &addr,
        &k,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        b"",
    );
    assert_eq!((code, out.as_slice()), (3, &b"out\n"[..]));
    assert_eq!(err, "err\n");

    let (code, _, _) = exec(&addr, &k, &["sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(code, 128 + 15, "a signal-killed command gives 128+N");

    let (code, out, _) = exec(&addr, &k, &["wc", "-c"], &[7u8; 1_000_000]);
    assert_eq!(
        (code, String::from_utf8(out).unwrap().trim()),
        (0, "1000000")
    );

    // Both directions at once: cat must not deadlock against its own output.
    let input: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let (code, out, _) = exec(&addr, &k, &["cat"], &input);
    assert_eq!(code, 0);
    assert!(
        out == input,
        "cat returned {} of {} bytes",
        out.len(),
        input.len()
    );

    let (code, _, err) = exec(&addr, &k, &["/no/such/program"], b"");
    assert_eq!(code, 127, "{err}");
}

#[test]
fn a_hundred_megabytes_of_output_arrive_intact() {
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let file = fx.path("sent");
    let cmd = format!("head -c 100000000 /dev/urandom | tee {file}");
    let key = fx.key();
    let (code, out, err) = exec(
        &server.addr("exec", "tcp"),
        &["--key", &key],
        &["sh", "-c", &cmd],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 100_000_000);
    assert_eq!(sha256_hex(&out), sha256_hex(&std::fs::read(&file).unwrap()));
}

/// One way of trying to run a command without the key: (refused?, what was seen).
type Attempt<'a> = Box<dyn Fn(&str) -> (bool, String) + 'a>;

#[test]
fn wrong_missing_and_replayed_keys_run_nothing() {
    if !crate::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let (native, classic) = (
        server.addr("exec", "tcp"),
        server.addr("exec-classic", "tcp"),
    );
    let other = fx.other_key();
    let cases: [(&str, Attempt); 7] = [
        (
            "a client of the old plaintext protocol, with the key",
            Box::new(|cmd: &str| {
                let r = fx.raw(&native, "native-old", &["sh", "-c", cmd]);
                let told = r["got"].as_str().unwrap_or_default().contains("protocol 2");
                (told && r["how"] != "timeout", r.to_string())
            }),
        ),
        (
            "wrong key",
            Box::new(|cmd: &str| {
                let (code, _, err) = exec(&native, &["--key", &other], &["sh", "-c", cmd], b"");
                (code == 255 && err.contains("wrong key"), err)
            }),
        ),
        (
            "no key",
            Box::new(|cmd: &str| {
                let (code, _, err) =
                    exec(&native, &["--insecure-no-auth"], &["sh", "-c", cmd], b"");
                let told = err.contains("the server takes a shared key (--key)");
                (code == 255 && told, err)
            }),
        ),
        (
            "native replay",
            Box::new(|_: &str| {
                let marker = fx.path("replayed");
                let r = fx.raw(&native, "native-replay", &[&marker]);
                (
                    r["ran_first"] == true && r["ran_again"] == false && r["how"] != "timeout",
                    r.to_string(),
                )
            }),
        ),
        (
            "classic replay",
            Box::new(|cmd: &str| {
                let r = fx.raw(&classic, "classic-replay", &[cmd]);
                (
                    r["got"] == 0 && r["how"] != "timeout" && r["first"] == 0,
                    r.to_string(),
                )
            }),
        ),
        (
            "classic without conn_auth",
            Box::new(|cmd: &str| {
                let r = fx.raw(&classic, "classic-noauth", &[cmd]);
                (r["got"] == 0 && r["how"] != "timeout", r.to_string())
            }),
        ),
        (
            "silent client",
            Box::new(|_: &str| {
                let r = fx.raw(&native, "native-silent", &[]);
                (r["how"] != "timeout", r.to_string())
            }),
        ),
    ];
    for (i, (name, attempt)) in cases.iter().enumerate() {
        let marker = fx.path(&format!("marker{i}"));
        let (refused, detail) = attempt(&format!("touch {marker}"));
        assert!(refused, "{name} was not refused: {detail}");
        assert!(!Path::new(&marker).exists(), "{name}: the command ran");
    }
    // The server is still there for a client with the key.
    let key = fx.key();
    let (code, out, _) = exec(&native, &["--key", &key], &["echo", "ok"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"ok\n"[..]));
}

#[test]
fn hostile_frames_close_that_connection_and_the_server_serves_on() {
    if !crate::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let (native, classic) = (
        server.addr("exec", "tcp"),
        server.addr("exec-classic", "tcp"),
    );
    for (case, bytes, want) in [
        ("oversized 0x7fffffff", "007fffffff", "exceeds"),
        ("oversized 0xffffffff", "00ffffffff", "exceeds"),
        ("oversized data 0xffffffff", "01ffffffff", "exceeds"),
        (
            "garbage hello",
            &hex(b"GET / HTTP/1.1\r\n\r\n"),
            "unknown frame kind",
        ),
        (
            "truncated frame",
            "00000000647b2274",
            "closed in the middle of a frame",
        ),
    ] {
        let r = fx.raw(&native, "native-after-auth", &[bytes, "half-close"]);
        assert_ne!(r["how"], "timeout", "{case}: connection left open");
        assert!(r["got"].as_str().unwrap().contains(want), "{case}: {r}");
    }
    // The classic protocol has no length prefix from the client: such bytes are a command
    // (one that fails), answered in a proper frame, and the connection goes on.
    for prefix in ["ffffff7f", "ffffffff"] {
        let r = fx.raw(&classic, "classic-raw", &[prefix]);
        assert!(r["first"].as_i64().unwrap() > 0, "{r}");
        assert_eq!(r["second"], "still here\n");
    }
    let key = fx.key();
    let (code, out, _) = exec(&native, &["--key", &key], &["echo", "ok"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"ok\n"[..]));
}

#[test]
fn killing_the_client_kills_the_remote_process_group() {
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let key = fx.key();
    let secs = unique_sleep();
    let script = format!("sleep {secs}; echo never");
    let mut client = exec_command(&server.addr("exec", "tcp"), &key, &["sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sleeper = format!("^sleep {secs}");
    let shell = format!("^sh -c sleep {secs}");
    assert!(wait_running(&sleeper, true), "the command never started");
    assert!(running(&shell));
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(
        wait_running(&sleeper, false),
        "sleep {secs} outlived its client"
    );
    assert!(!running(&shell), "the shell outlived its client");
}

#[test]
fn a_classic_client_hanging_up_mid_command_kills_it_too() {
    if !crate::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let secs = unique_sleep();
    let pattern = format!("^sleep {secs}");
    let cmd = format!("sleep {secs}; echo never");
    fx.raw(
        &server.addr("exec-classic", "tcp"),
        "classic-leave",
        &[&cmd, &pattern],
    );
    assert!(
        wait_running(&pattern, false),
        "sleep {secs} outlived its client"
    );
}

#[test]
fn a_reader_that_leaves_stops_the_client_and_the_command() {
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let key = fx.key();
    let word = unique_sleep();
    let mut client = exec_command(&server.addr("exec", "tcp"), &key, &["yes", &word])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    common::kill_after(&client, LIMIT, "taojie exec -- yes");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), word);
    drop(out);
    let status = wait_timeout(&mut client, Duration::from_secs(10)).expect("client ended");
    assert_eq!(
        status.code(),
        Some(141),
        "128 + SIGPIPE, like `yes | head -1`"
    );
    assert!(
        wait_running(&format!("^yes {word}"), false),
        "yes outlived its reader"
    );
}

#[test]
fn server_shutdown_kills_running_commands() {
    let fx = Fixture::new();
    let mut server = fx.server(&[]);
    let key = fx.key();
    let secs = unique_sleep();
    let mut client = exec_command(&server.addr("exec", "tcp"), &key, &["sleep", &secs])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pattern = format!("^sleep {secs}");
    assert!(wait_running(&pattern, true), "the command never started");
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.is_some(), "the server did not stop");
    assert!(
        wait_running(&pattern, false),
        "sleep {secs} outlived the server"
    );
    let status = wait_timeout(&mut client, Duration::from_secs(10)).expect("client ended");
    assert_eq!(
        status.code(),
        Some(255),
        "the client reports the lost connection"
    );
}

#[test]
fn allow_list_shell_policy_timeout_and_process_cap() {
    let fx = Fixture::new();
    let key = fx.key();
    let k = ["--key", key.as_str()];
    let server = Server::start(
        &["serve", "exec", "--listen", "127.0.0.1:0", "--key", &key]
            .into_iter()
            .chain([
                "--allow",
                "echo",
                "--allow",
                "sleep",
                "--timeout",
                "2",
                "--max-procs",
                "1",
            ])
            .collect::<Vec<_>>(),
        1,
    );
    let addr = server.addr("exec", "tcp");
    let marker = fx.path("marker");
    let (code, out, _) = exec(&addr, &k, &["echo", "allowed"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"allowed\n"[..]));
    let (code, _, err) = exec(&addr, &k, &["touch", &marker], b"");
    assert_eq!(code, 255);
    assert!(err.contains("not an allowed program"), "{err}");
    let (code, _, err) = exec(
        &addr,
        &[&k[..], &["--shell"][..]].concat(),
        &["touch", &marker],
        b"",
    );
    assert_eq!(code, 255);
    assert!(err.contains("without --shell"), "{err}");
    assert!(!Path::new(&marker).exists());

    // One command runs; a second is refused while it does; the first dies at the timeout.
    let secs = unique_sleep();
    let mut first = exec_command(&addr, &key, &["sleep", &secs])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_running(&format!("^sleep {secs}"), true));
    let (code, _, err) = exec(&addr, &k, &["echo", "second"], b"");
    assert_eq!(code, 255);
    assert!(err.contains("too many commands"), "{err}");
    let status = wait_timeout(&mut first, Duration::from_secs(20)).expect("timeout applied");
    assert_eq!(status.code(), Some(124));
    assert!(!running(&format!("^sleep {secs}")));
}

/// `--allow find` allows `find -exec sh -c ...` (arguments are not restricted, as --help
/// says); `--allow-exact` allows one command line and refuses the same program with any
/// other arguments.
#[test]
fn allow_exact_runs_that_command_line_and_nothing_else() {
    let fx = Fixture::new();
    let key = fx.key();
    let k = ["--key", key.as_str()];
    let dir = fx.path("");
    let server = fx.server_native(&[
        "--allow-exact",
        "echo 'exactly this'",
        "--allow-exact",
        &format!("find {dir} -maxdepth 0 -name nothing"),
    ]);
    let addr = server.addr("exec", "tcp");
    let (code, out, err) = exec(&addr, &k, &["echo", "exactly this"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"exactly this\n"[..]), "{err}");
    let (code, _, err) = exec(&addr, &k, &["echo", "exactly", "this"], b"");
    assert_eq!(code, 255);
    assert!(err.contains("not an allowed command line"), "{err}");
    let marker = fx.path("escaped");
    let touch = format!("touch {marker}");
    let escape = [
        "find",
        &dir,
        "-maxdepth",
        "0",
        "-exec",
        "sh",
        "-c",
        &touch,
        ";",
    ];
    let (code, _, err) = exec(&addr, &k, &escape, b"");
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("not an allowed command line"), "{err}");
    assert!(!Path::new(&marker).exists(), "find -exec ran");
    let (code, _, err) = exec(
        &addr,
        &k,
        &["find", &dir, "-maxdepth", "0", "-name", "nothing"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = exec(&addr, &k, &["sh", "-c", "true"], b"");
    assert_eq!(code, 255);
    assert!(err.contains("not an allowed program"), "{err}");

    // The help says what --allow does not restrict.
    let (_, help, _) = run_with_input(&["serve", "exec", "--help"], b"", LIMIT);
    let help = String::from_utf8_lossy(&help)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains("Its arguments are not restricted"), "{help}");
    assert!(help.contains("--allow-exact"), "{help}");
    // A line that does not split is one error at start.
    let (status, _, err) = run_with_input(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            &key,
            "--allow-exact",
            "echo 'open",
        ],
        b"",
        LIMIT,
    );
    assert!(!status.success());
    assert!(
        err.starts_with("taojie: error: --allow-exact") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn no_key_is_refused_beyond_loopback_and_loud_on_it() {
    for listen in [
        &["--listen", "0.0.0.0:0"][..],
        &["--listen", "127.0.0.1:0", "--classic", "0.0.0.0:0"],
    ] {
        let args = [&["serve", "exec", "--insecure-no-auth"][..], listen].concat();
        let (status, _, err) = run_with_input(&args, b"", LIMIT);
        assert!(!status.success());
        assert!(err.contains("refusing to run exec without a key"), "{err}");
    }
    let (status, _, err) =
        run_with_input(&["serve", "exec", "--listen", "127.0.0.1:0"], b"", LIMIT);
    assert!(!status.success());
    assert!(err.contains("--key"), "{err}");

    let mut child = crate::common::command(bin())
        .args([
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::kill_after(&child, LIMIT, "taojie serve exec --insecure-no-auth");
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("exec tcp ")
        .expect("announce line")
        .to_string();
    let (code, out, _) = exec(&addr, &["--insecure-no-auth"], &["echo", "open"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"open\n"[..]));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("WARNING") && err.contains("NO AUTHENTICATION"),
        "{err}"
    );
}

#[test]
fn a_port_that_is_not_exec_says_what_answered_there() {
    let fx = Fixture::new();
    let chat = Server::start(&["serve", "chat", "--listen", "127.0.0.1:0"], 1);
    let echo = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let (chat, echo) = (chat.addr("chat", "tcp"), echo.addr("echo", "tcp"));
    let key = fx.key();
    let (code, _, err) = exec(&chat, &["--key", &key], &["true"], b"");
    assert_eq!(code, 255, "{err}");
    assert!(
        err.starts_with(&format!(
            "taojie: error: {chat} answered, but not as a taojie exec service (it sent `*** welcome"
        )),
        "{err}"
    );
    // The echo server waits for its client to speak: a short wait, then a question.
    let (code, _, err) = exec(&echo, &["--key", &key], &["true"], b"");
    assert_eq!(code, 255, "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "taojie: error: {echo} accepted the connection but sent no taojie banner within 3 s: \
             is it the right port?"
        )
    );
}
