//! `taojie serve chat` against real clients: nc, taojie chat, Python UDP clients written like
//! the seeds', and raw sockets that misbehave on purpose.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, bin, run_program};

const WAIT: Duration = Duration::from_secs(15);

/// A line client run as a process (nc or taojie chat): lines in on stdin, lines out.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Client {
    fn spawn(mut cmd: Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start client");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            seen: Vec::new(),
        }
    }

    fn nc(addr: &str) -> Client {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut cmd = Command::new("nc");
        cmd.args([host, port]);
        Client::spawn(cmd)
    }

    fn taojie(addr: &str, name: &str, extra: &[&str]) -> Client {
        let mut cmd = Command::new(bin());
        cmd.args(["chat", addr, "--name", name]).args(extra);
        Client::spawn(cmd)
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Whether a line already seen, or one still to come, equals `want`.
    fn saw_or_wait(&mut self, want: &str) {
        if !self.seen.iter().any(|l| l == want) {
            self.wait_line(want);
        }
    }

    /// Reads lines until one satisfies `pred`; panics with what was seen after [`WAIT`].
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("never saw {what}; saw {:#?}", self.seen),
            }
        }
    }

    fn wait_line(&mut self, want: &str) {
        self.wait_for(want, |l| l == want);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat_server(extra: &[&str]) -> Server {
    let mut args = vec!["serve", "chat", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let n = 1 + usize::from(extra.contains(&"--udp"));
    Server::start(&args, n)
}

/// A raw-socket client that has picked a name (and seen the broker confirm it).
fn raw_client(addr: &str, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    named(TcpStream::connect(addr).unwrap(), name)
}

/// A client with a small fixed receive buffer (Linux would otherwise grow it to tens of MiB
/// on loopback, and a silent client could swallow the whole test without falling behind).
fn small_window_client(addr: &str, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&addr.into()).unwrap();
    named(s.into(), name)
}

fn named(s: TcpStream, name: &str) -> (TcpStream, BufReader<TcpStream>) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    (&s).write_all(format!("/nick {name}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    while !line.ends_with(&format!("is now known as {name}\n")) {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed before /nick");
    }
    (s, r)
}

fn read_until(r: &mut BufReader<TcpStream>, what: &str) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).unwrap();
        assert!(
            n > 0,
            "closed before {what:?}; got {}",
            String::from_utf8_lossy(&all)
        );
        all.extend_from_slice(&line);
        if String::from_utf8_lossy(&line).contains(what) {
            return all;
        }
    }
}

#[test]
fn nc_and_taojie_clients_chat_with_names_rooms_and_history() {
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
    dora.wait_for("own rename", |l| l.ends_with("is now known as dora"));
    ncs[0].wait_for("dora's arrival", |l| l.ends_with("is now known as dora"));

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
    eve.wait_line("* ben waves");
    let history: Vec<&String> = eve.seen.iter().filter(|l| !l.starts_with("***")).collect();
    assert_eq!(history.len(), 20, "{:#?}", eve.seen);

    // /join moves a member; both rooms are told; lines stay in their room.
    ncs[1].send("/join dev");
    ncs[0].wait_line("*** ben left lobby (joined dev)");
    ncs[1].wait_line("*** ben joined dev");
    ncs[1].send("only dev hears this");
    ncs[1].send("/who");
    ncs[1].wait_line("*** in dev (1): ben");
    ncs[0].send("/join dev");
    ncs[1].wait_line("*** ann joined dev");
    ncs[0].wait_line("<ben> only dev hears this");
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

#[test]
fn seed_style_udp_clients_talk_through_the_hub() {
    let server = chat_server(&["--udp", "127.0.0.1:0"]);
    let hub = server.addr("chat", "udp");
    let mut dora = Client::taojie(&hub, "dora", &["--udp"]);
    // Written like the seeds' QQ clients: sendto `NAME: text`, recvfrom 1024.
    let script = r#"
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
hub = (host, int(port))
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.settimeout(10)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.settimeout(10)
b.sendto('金老板: 在吗'.encode('utf-8'), hub)
a.sendto('小红: 你好'.encode('utf-8'), hub)
msg, addr = b.recvfrom(1024)
assert msg.decode('utf-8') == '小红: 你好', msg
b.sendto('金老板: 收到\x1b[2J'.encode('utf-8'), hub)
msg, addr = a.recvfrom(1024)
assert msg.decode('utf-8') == '金老板: 收到^[[2J', msg
a.sendto(b'x' * 5000, hub)
msg, addr = a.recvfrom(1024)
assert b'too long' in msg, msg
a.sendto('小红: bye'.encode('utf-8'), hub)
print('ok')
"#;
    let (status, out, err) = run_program("python3", &["-c", script, &hub], b"", WAIT);
    assert!(status.success(), "python: {err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "ok");
    // The taojie client, heard from at start, got every relayed line but the overlong one.
    dora.wait_line("小红: 你好");
    dora.wait_line("金老板: 收到^[[2J");
    dora.wait_line("小红: bye");
    assert!(!dora.seen.iter().any(|l| l.contains("xxxx")));
    dora.send("hello python");
    drop(dora.stdin.take());
    let status = common::wait_timeout(&mut dora.child, WAIT).expect("client exits at end of input");
    assert!(status.success());
}

#[test]
fn hostile_lines_are_refused_or_neutralised() {
    let server = chat_server(&["--max-line", "100"]);
    let addr = server.addr("chat", "tcp");
    let (mut a, mut ar) = raw_client(&addr, "mal");
    let (_b, mut br) = raw_client(&addr, "vic");
    read_until(&mut ar, "vic");

    a.write_all(&[b'y'; 150]).unwrap();
    a.write_all(b"\n").unwrap();
    read_until(&mut ar, "*** line too long (over 100 bytes); not sent");
    // A line with no end at all is refused as soon as it passes the limit, not buffered.
    a.write_all(&vec![b'z'; 1 << 20]).unwrap();
    read_until(&mut ar, "line too long");
    a.write_all(b"\nbad \xff\xfe utf8\n\x1b[2J\x1b]0;title\x07 clear\n\x9b\xc2\x9b31m c1\n")
        .unwrap();
    let got = read_until(&mut br, "c1");
    let text = String::from_utf8(got).expect("only valid UTF-8 reaches others");
    assert!(text.contains("<mal> bad \u{fffd}\u{fffd} utf8\n"), "{text}");
    assert!(text.contains("<mal> ^[[2J^[]0;title^G clear\n"), "{text}");
    assert!(text.contains("<mal> \u{fffd}\u{fffd}31m c1\n"), "{text}");
    assert!(
        !text.contains('y') && !text.contains('z'),
        "overlong lines leaked: {text}"
    );
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
}

/// Resident memory of a process, from /proc/PID/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_never_reads_is_dropped_and_memory_stays_bounded() {
    let server = chat_server(&["--queue", "1000"]);
    let addr = server.addr("chat", "tcp");
    let pid = server.child.id();
    let (_slow, _slow_r) = small_window_client(&addr, "slow");
    let (mut w, _wr) = raw_client(&addr, "w");
    const LINES: usize = 100_000;
    let counts: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let readers: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let (_s, mut r) = raw_client(&addr, &format!("r{i}"));
            let count = count.clone();
            thread::spawn(move || {
                let _keep = _s;
                let mut dropped_notice = false;
                let mut line = String::new();
                while count.load(Ordering::Relaxed) < LINES {
                    line.clear();
                    if r.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    if let Some(rest) = line.strip_prefix("<w> ") {
                        let n: usize = rest[..6].parse().unwrap();
                        assert_eq!(n, count.load(Ordering::Relaxed), "lines out of order");
                        count.fetch_add(1, Ordering::Relaxed);
                    } else if line == "*** slow dropped (not reading)\n" {
                        dropped_notice = true;
                    }
                }
                dropped_notice
            })
        })
        .collect();

    // The writer keeps at most a window of lines ahead of the readers, so the readers
    // (threads in a debug test) are never the slow ones; the silent client falls behind.
    let pad = "x".repeat(140);
    let mut max_rss = 0;
    let mut sent = 0;
    while sent < LINES {
        let batch: String = (sent..sent + 250)
            .map(|i| format!("{i:06} {pad}\n"))
            .collect();
        w.write_all(batch.as_bytes()).unwrap();
        sent += 250;
        let deadline = Instant::now() + WAIT;
        while counts
            .iter()
            .any(|c| c.load(Ordering::Relaxed) + 500 < sent)
        {
            assert!(Instant::now() < deadline, "readers stalled at {sent}");
            thread::sleep(Duration::from_millis(1));
        }
        if sent % 10_000 == 0 {
            max_rss = max_rss.max(rss_kib(pid));
        }
    }
    for r in readers {
        assert!(r.join().unwrap(), "no drop notice for the silent client");
    }
    for c in &counts {
        assert_eq!(c.load(Ordering::Relaxed), LINES);
    }
    eprintln!("broker VmRSS peaked at {max_rss} KiB");
    assert!(max_rss < 64 * 1024, "broker grew to {max_rss} KiB");
}

#[test]
fn with_a_key_only_authenticated_clients_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chat.key");
    let other = dir.path().join("other.key");
    for k in [&key, &other] {
        let (st, _, err) = common::run_with_input(&["keygen", k.to_str().unwrap()], b"", WAIT);
        assert!(st.success(), "{err}");
    }
    let key = key.to_str().unwrap();
    let server = chat_server(&["--key", key]);
    let addr = server.addr("chat", "tcp");
    let mut dora = Client::taojie(&addr, "dora", &["--key", key]);
    dora.wait_for("own rename", |l| l.ends_with("is now known as dora"));
    let mut ed = Client::taojie(&addr, "ed", &["--key", key]);
    ed.wait_for("own rename", |l| l.ends_with("is now known as ed"));

    // A plain line client: it gets the 32-byte challenge, its lines fail the check, and the
    // connection closes; it never reads or posts a chat line.
    let mut nc = TcpStream::connect(&addr).unwrap();
    nc.set_read_timeout(Some(WAIT)).unwrap();
    nc.write_all(b"/nick intruder\nhello from nc, anyone there?\n")
        .unwrap();
    dora.send("secret plans");
    ed.wait_line("<dora> secret plans");
    let mut got = Vec::new();
    let _ = nc.read_to_end(&mut got);
    assert!(got.len() <= 32, "unauthenticated client got {got:?}");

    // A taojie client with the wrong key is refused with a clear error.
    let (status, out, err) = run_program(
        bin(),
        &[
            "chat",
            &addr,
            "--name",
            "mallory",
            "--key",
            other.to_str().unwrap(),
        ],
        b"hi\n",
        WAIT,
    );
    assert!(!status.success());
    assert!(err.contains("authentication"), "{err}");
    assert!(!String::from_utf8_lossy(&out).contains("secret"));

    dora.send("/who");
    dora.wait_line("*** in lobby (2): dora, ed");
    assert!(
        !dora
            .seen
            .iter()
            .chain(&ed.seen)
            .any(|l| l.contains("intruder") || l.contains("nc,"))
    );
}
