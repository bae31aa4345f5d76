//! `taojie --help`'s examples and the README's "first five minutes" run exactly as written,
//! against `taojie serve` on its default ports: in a network namespace of the test's own (only
//! `lo`), so the default ports are free whatever else runs on the machine, with a home of its
//! own for the key `serve` makes.
//!
//! Every line must have a check here: a new line without one fails the test.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, bin, run_program};

const LIMIT: Duration = Duration::from_secs(20);

/// A network namespace with only `lo`, up; deleted on drop.
struct Netns(String);

impl Netns {
    /// `tag` tells apart the namespaces of tests that run at once.
    fn new(tag: &str) -> Option<Netns> {
        #[allow(unsafe_code)]
        // SAFETY: geteuid has no arguments and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI runs as root: the help examples must run"
            );
            eprintln!("skipped: network namespaces need root (CI runs this)");
            return None;
        }
        let ns = Netns(format!("tj{tag}-{}", std::process::id()));
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        Some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// Where the examples run: the namespace, a working directory and a home of their own, and
/// `taojie` on the PATH.
struct Place {
    ns: Netns,
    dir: PathBuf,
    home: PathBuf,
}

impl Place {
    /// The arguments that run `script` in a shell in this place.
    fn argv(&self, script: &str) -> Vec<String> {
        let bin_dir = Path::new(bin()).parent().unwrap().display().to_string();
        let path = format!(
            "PATH={bin_dir}:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        let home = self.home.display();
        vec![
            "netns".into(),
            "exec".into(),
            self.ns.0.clone(),
            "env".into(),
            path,
            format!("HOME={home}"),
            format!("XDG_DATA_HOME={home}/data"),
            format!("XDG_CONFIG_HOME={home}/config"),
            "sh".into(),
            "-c".into(),
            format!("cd '{}' && {script}", self.dir.display()),
        ]
    }

    /// Runs `line` to its end with `input` on stdin: (success, stdout, stderr).
    fn run(&self, line: &str, input: &[u8]) -> (bool, String, String) {
        let argv = self.argv(line);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (status, out, err) = run_program("ip", &args, input, LIMIT);
        (
            status.success(),
            String::from_utf8_lossy(&out).into_owned(),
            err,
        )
    }

    /// Starts `line` and leaves it running. The shell `exec`s it, so it keeps the PID the
    /// test started.
    fn start(&self, line: &str) -> Running {
        let argv = self.argv(&format!("exec {line}"));
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        Running(Proc::spawn("ip", &args))
    }
}

impl Place {
    /// A namespace, and a working directory and home in a temporary directory (returned, to
    /// be kept until the end); `None` when not root outside CI.
    fn new(tag: &str) -> Option<(Place, tempfile::TempDir)> {
        let ns = Netns::new(tag)?;
        let tmp = tempfile::tempdir().unwrap();
        let place = Place {
            ns,
            dir: tmp.path().join("work"),
            home: tmp.path().join("home"),
        };
        std::fs::create_dir_all(&place.dir).unwrap();
        std::fs::create_dir_all(&place.home).unwrap();
        Some((place, tmp))
    }

    /// Starts `line`, which runs `taojie serve`, and waits until its services are up.
    fn serve(&self, line: &str) -> Running {
        let mut serve = self.start(line);
        for socket in [
            "echo tcp 127.0.0.1:9007",
            "time udp 127.0.0.1:9013",
            "chat tcp 127.0.0.1:9006",
            "chat-web tcp 127.0.0.1:9080",
            "exec tcp 127.0.0.1:9512",
            "files tcp 127.0.0.1:9021",
        ] {
            serve.wait_stdout_line(socket);
        }
        serve
    }
}

/// A long-running example, ended by SIGTERM (by its PID) when dropped.
struct Running(Proc);

impl Running {
    /// Waits for a stdout line that starts with `prefix`.
    fn wait_stdout_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = String::from_utf8_lossy(&self.0.stdout).into_owned();
            if let Some(line) = out.lines().find(|l| l.starts_with(prefix)) {
                return line.to_string();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.0.more_stdout(left) {
                panic!(
                    "no stdout line {prefix:?}; stdout {out:?}, stderr {:?}",
                    self.0.stderr
                );
            }
        }
    }
}

impl Running {
    /// Waits for a stdout line that contains `text`.
    fn wait_stdout_line_containing(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = String::from_utf8_lossy(&self.0.stdout).into_owned();
            if let Some(line) = out.lines().find(|l| l.contains(text)) {
                return line.to_string();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.0.more_stdout(left) {
                panic!("no stdout line with {text:?}; stdout {out:?}");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe {
            libc::kill(self.0.child.id() as i32, libc::SIGTERM);
        }
        if common::wait_timeout(&mut self.0.child, LIMIT).is_none() {
            let _ = self.0.child.kill();
            let _ = self.0.child.wait();
        }
    }
}

/// The command of each example line of `taojie --help`, as written (without the comment).
fn examples() -> Vec<String> {
    let (status, out, err) = common::run_with_input(&["--help"], b"", LIMIT);
    assert!(status.success(), "{err}");
    String::from_utf8(out)
        .unwrap()
        .lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        // An example starts two spaces in; a deeper indent continues a comment.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.trim().split("  ").next().unwrap().to_string())
        .collect()
}

#[test]
fn every_example_of_taojie_help_works_as_written() {
    let examples = examples();
    assert!(examples.len() >= 8, "{examples:?}");
    let Some((place, _tmp)) = Place::new("help") else {
        return;
    };
    std::fs::create_dir_all(place.dir.join("photos")).unwrap();
    std::fs::write(place.dir.join("photos/cat.jpg"), b"not really a cat").unwrap();

    // `taojie serve` first: the other examples talk to it.
    assert_eq!(examples[0], "taojie serve", "{examples:?}");
    let serve = place.serve("taojie serve");

    for example in &examples[1..] {
        let fail = |what: &str| -> ! { panic!("`{example}`: {what}") };
        match example.as_str() {
            "taojie connect 127.0.0.1:9007" => {
                let (ok, out, err) = place.run(example, b"hello\n");
                if !ok || out != "hello\n" {
                    fail(&format!("echo {out:?} {err}"));
                }
            }
            "taojie exec 127.0.0.1:9512 -- uname -a" => {
                let (ok, out, err) = place.run(example, b"");
                if !ok || !out.starts_with("Linux ") {
                    fail(&format!("{out:?} {err}"));
                }
            }
            "taojie put 127.0.0.1:9021 photos/" => {
                let (ok, _, err) = place.run(example, b"");
                let stored = place.home.join("data/taojie/files/photos/cat.jpg");
                if !ok || std::fs::read(&stored).ok().as_deref() != Some(&b"not really a cat"[..]) {
                    fail(&format!("not stored in {}: {err}", stored.display()));
                }
            }
            "taojie time 127.0.0.1:9013 '%H:%M:%S'" => {
                let (ok, out, err) = place.run(example, b"");
                let t = out.trim_end();
                let shape = t.len() == 8
                    && t.char_indices().all(|(i, c)| {
                        if i % 3 == 2 {
                            c == ':'
                        } else {
                            c.is_ascii_digit()
                        }
                    });
                if !ok || !shape {
                    fail(&format!("{out:?} {err}"));
                }
            }
            "nc 127.0.0.1 9006" => {
                // The broker greets a newcomer at once; nc stays until it is stopped.
                let mut nc = place.start(example);
                nc.wait_stdout_line("*** ");
            }
            "taojie bench 127.0.0.1:9007 --conns 50 --depth 16 --seconds 3" => {
                let (ok, out, err) = place.run(example, b"");
                if !ok || !format!("{out}{err}").contains("verified") {
                    fail(&format!("{out} {err}"));
                }
            }
            "taojie serve echo --listen 127.0.0.1:0 --upper" => {
                let mut echo = place.start(example);
                let line = echo.wait_stdout_line("echo tcp 127.0.0.1:");
                let addr = line.rsplit(' ').next().unwrap();
                let (ok, out, err) = place.run(&format!("taojie connect {addr}"), b"shout\n");
                if !ok || out != "SHOUT\n" {
                    fail(&format!("{out:?} {err}"));
                }
            }
            "taojie listen [::1]:8000 --keep-open > log" => {
                let mut listener = place.start(example);
                listener.0.wait_stderr("listen tcp [::1]:8000", LIMIT);
                let (ok, _, err) = place.run("taojie connect [::1]:8000", b"to the log\n");
                if !ok {
                    fail(&err);
                }
                let log = place.dir.join("log");
                let deadline = Instant::now() + LIMIT;
                while std::fs::read(&log).unwrap_or_default() != b"to the log\n" {
                    if Instant::now() > deadline {
                        fail(&format!("log holds {:?}", std::fs::read(&log)));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            "taojie keygen my.key" => {
                let (ok, _, err) = place.run(example, b"");
                let key = std::fs::read_to_string(place.dir.join("my.key")).unwrap_or_default();
                let hex =
                    key.trim().len() == 64 && key.trim().chars().all(|c| c.is_ascii_hexdigit());
                if !ok || !hex {
                    fail(&format!("{key:?} {err}"));
                }
            }
            "taojie msg listen --name ann" => {
                // On the LAN of this namespace (only lo): it binds the messenger port and joins.
                let mut msg = place.start(example);
                msg.0.wait_stderr("msg udp 0.0.0.0:2425", LIMIT);
            }
            other => panic!("no check for the example `{other}`: add one here"),
        }
    }
    drop(serve);
}

/// The commands of the README's "first five minutes", as written (without the comments):
/// every line of its `sh` blocks.
fn first_five_minutes() -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("\n## The first five minutes\n")
        .expect("the README has a first five minutes");
    // It comes first: right after the two commands and a paragraph of introduction.
    assert!(
        readme[..start].matches("\n## ").count() == 0
            && readme[..start].matches("```").count() == 2,
        "the first five minutes is not the README's first section"
    );
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").expect("a section after it")];
    let mut lines = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        match (line, in_block) {
            ("```sh", false) => in_block = true,
            ("```", true) => in_block = false,
            (l, true) => lines.push(l.split("  #").next().unwrap().trim_end().to_string()),
            _ => {}
        }
    }
    lines
}

#[test]
fn the_readme_s_first_five_minutes_work_as_written() {
    let readme = include_str!("../README.md");
    assert!(
        !readme.contains("../shared"),
        "the README points outside the repository"
    );
    assert!(
        readme.contains("the classic Chinese socket-programming course for Python"),
        "the README does not name the course it grew from"
    );
    let lines = first_five_minutes();
    let Some((place, _tmp)) = Place::new("readme") else {
        return;
    };
    assert_eq!(lines[0], "taojie serve", "{lines:?}");
    let mut serve = place.serve(&lines[0]);
    // As the README says: the key it made is the clients' default on this machine.
    let made = serve.0.wait_stderr("taojie: created a new key at ", LIMIT);
    assert!(made.contains("clients on this machine use it"), "{made}");
    let mut bob = None;
    for line in &lines[1..] {
        let fail = |what: &str| -> ! { panic!("`{line}`: {what}") };
        let expect = |input: &[u8], check: &dyn Fn(&str) -> bool| {
            let (ok, out, err) = place.run(line, input);
            if !ok || !check(&out) {
                fail(&format!("stdout {out:?}, stderr {err}"));
            }
        };
        match line.as_str() {
            "echo hello | taojie connect 127.0.0.1:9007" => expect(b"", &|o| o == "hello\n"),
            "echo 'first notes' > notes.txt" => expect(b"", &|_| true),
            "taojie exec 127.0.0.1:9512 -- uname -a" => expect(b"", &|o| o.starts_with("Linux ")),
            "taojie put 127.0.0.1:9021 notes.txt" => {
                expect(b"", &|_| true);
                let stored = place.home.join("data/taojie/files/notes.txt");
                if std::fs::read(&stored).ok().as_deref() != Some(&b"first notes\n"[..]) {
                    fail(&format!("not stored in {}", stored.display()));
                }
            }
            "taojie ls 127.0.0.1:9021" => expect(b"", &|o| o.contains(" notes.txt")),
            "taojie get 127.0.0.1:9021 notes.txt -o copies" => {
                expect(b"", &|_| true);
                let copy = std::fs::read(place.dir.join("copies/notes.txt")).unwrap_or_default();
                if copy != b"first notes\n" {
                    fail(&format!("copies/notes.txt holds {copy:?}"));
                }
            }
            "echo hi all | taojie chat 127.0.0.1:9006 --name ann" => {
                expect(b"", &|o| o.contains("welcome, you are ann"))
            }
            "taojie http http://127.0.0.1:9080/" => {
                expect(b"", &|o| o.to_lowercase().starts_with("<!doctype html>"))
            }
            "taojie msg listen --name bob &" => {
                let mut listener = place.start(line.trim_end_matches(" &"));
                listener.0.wait_stderr("msg udp 0.0.0.0:2425", LIMIT);
                bob = Some(listener);
            }
            "taojie msg send 127.0.0.1 'hi bob'" => {
                let (ok, _, err) = place.run(line, b"");
                if !ok || !err.contains("acknowledged by 127.0.0.1:2425") {
                    fail(&err);
                }
                let listener = bob.as_mut().unwrap_or_else(|| fail("no listener started"));
                listener.wait_stdout_line_containing("hi bob");
            }
            other => panic!("no check for the README's `{other}`: add one here"),
        }
    }
    drop(bob);
    drop(serve);
}
