//! `taojie serve --metrics ADDR`: the endpoint is scraped with the Prometheus Python client's
//! parsers (`scrape.py`: the strict OpenMetrics one and the classic text one) before and
//! after real load — echo bytes, an exec command exiting 3, a client with the wrong key, a
//! file put, chat members sending lines, connections over --max-conns — and each counter
//! must have moved by exactly what that load did.
#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, run_with_input};

const LIMIT: Duration = Duration::from_secs(30);

/// One scrape: each sample's value by `name{labels}` (labels sorted), and each family's type.
#[derive(Debug)]
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
    content_type: String,
}

impl Scrape {
    /// The value of `name` with `labels` (0 when the series does not exist yet).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels = labels.to_vec();
        labels.sort();
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let key = format!("{name}{{{}}}", inner.join(","));
        self.samples.get(&key).copied().unwrap_or(0.0)
    }
}

/// Scrapes `url` through `scrape.py`.
fn scrape(url: &str) -> Scrape {
    let script = format!("{}/tests/metrics/scrape.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("timeout")
        .args(["20", "python3", &script, url])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "scrape.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("scrape.py prints JSON");
    let samples = v["samples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    let types = v["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Scrape {
        samples,
        types,
        content_type: v["content_type"].as_str().unwrap().to_string(),
    }
}

/// Scrapes until `done` holds (the server counts an event a moment after the client saw its
/// effect), for 30 s at most; returns the last scrape either way, for the assertions to show.
fn scrape_until(url: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(url);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection to an echo server that has echoed `data` back whole.
fn echoed(addr: &str, data: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut back = vec![0u8; data.len()];
    for (chunk, into) in data.chunks(16 * 1024).zip(back.chunks_mut(16 * 1024)) {
        s.write_all(chunk).unwrap();
        s.read_exact(into).unwrap();
    }
    assert_eq!(back, data);
    s
}

fn keygen(path: &Path) {
    let (status, _, err) = run_with_input(&["keygen", path.to_str().unwrap()], b"", LIMIT);
    assert!(status.success(), "keygen: {err}");
}

#[test]
fn counters_move_by_what_the_load_did() {
    if !crate::common::need::python("prometheus_client") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        &[
            "serve",
            "--any-port",
            "--max-conns",
            "2",
            "--metrics",
            "127.0.0.1:0",
        ],
        11,
        &[("XDG_DATA_HOME", data.path().to_str().unwrap())],
    );
    let url = format!("http://{}/metrics", server.addr("metrics", "tcp"));
    let key = data.path().join("taojie/key");
    let before = scrape(&url);
    assert!(
        before
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        before.content_type
    );
    assert_eq!(before.types["taojie_connections_accepted"], "counter");
    assert_eq!(before.types["taojie_connections_open"], "gauge");
    let echo = [("service", "echo")];

    // Echo: 64 KiB and one byte through the two connections --max-conns allows, then three
    // more, which are accepted and closed at once.
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let echo_addr = server.addr("echo", "tcp");
    let held = [echoed(&echo_addr, &payload), echoed(&echo_addr, b"x")];
    for _ in 0..3 {
        let mut s = TcpStream::connect(&echo_addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)), "closed at once");
    }
    let refused = |s: &Scrape, service| {
        s.get(
            "taojie_connections_refused_total",
            &[("service", service), ("reason", "connection limit")],
        )
    };
    let during = scrape_until(&url, |s| {
        refused(s, "echo") - refused(&before, "echo") >= 3.0
    });
    assert_eq!(refused(&during, "echo") - refused(&before, "echo"), 3.0);
    assert_eq!(during.get("taojie_connections_open", &echo), 2.0);
    let moved =
        |name: &str, labels: &[(&str, &str)]| during.get(name, labels) - before.get(name, labels);
    assert_eq!(moved("taojie_connections_accepted_total", &echo), 5.0);
    let bytes = (payload.len() + 1) as f64;
    assert_eq!(moved("taojie_received_bytes_total", &echo), bytes);
    assert_eq!(moved("taojie_sent_bytes_total", &echo), bytes);
    drop(held);
    let closed = scrape_until(&url, |s| s.get("taojie_connections_open", &echo) == 0.0);
    assert_eq!(closed.get("taojie_connections_open", &echo), 0.0);

    // Exec: a command exiting 3, and a client whose key is not the server's.
    let exec_addr = server.addr("exec", "tcp");
    let (status, _, err) = run_with_input(
        &[
            "exec",
            &exec_addr,
            "--key",
            key.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        b"",
        LIMIT,
    );
    assert_eq!(status.code(), Some(3), "{err}");
    let wrong = data.path().join("wrong.key");
    keygen(&wrong);
    let (status, _, _) = run_with_input(
        &[
            "exec",
            &exec_addr,
            "--key",
            wrong.to_str().unwrap(),
            "--",
            "true",
        ],
        b"",
        LIMIT,
    );
    assert!(!status.success());

    // Files: one upload of 100,000 bytes.
    let upload = data.path().join("upload.bin");
    std::fs::write(&upload, vec![7u8; 100_000]).unwrap();
    let (status, _, err) = run_with_input(
        &[
            "put",
            &server.addr("files", "tcp"),
            "--key",
            key.to_str().unwrap(),
            upload.to_str().unwrap(),
        ],
        b"",
        LIMIT,
    );
    assert!(status.success(), "put: {err}");

    // Time over UDP: the seed's strftime service answers `%Y` with a year.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(LIMIT)).unwrap();
    udp.send_to(b"%Y", server.addr("time", "udp")).unwrap();
    let mut year = [0u8; 16];
    assert_eq!(udp.recv(&mut year).unwrap(), 4);

    // Chat: two members; one sends five lines, which the other reads.
    let chat_addr = server.addr("chat", "tcp");
    let mut ann = TcpStream::connect(&chat_addr).unwrap();
    let bob = TcpStream::connect(&chat_addr).unwrap();
    bob.set_read_timeout(Some(LIMIT)).unwrap();
    let mut bob = BufReader::new(bob);
    // Bob is in the lobby once he is welcomed; lines sent after that reach him.
    let mut line = String::new();
    bob.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome"), "{line}");
    for i in 0..5 {
        writeln!(ann, "hello {i}").unwrap();
    }
    let mut got = 0;
    while got < 5 {
        line.clear();
        assert!(bob.read_line(&mut line).unwrap() > 0, "bob reads the lines");
        if line.contains("> hello ") {
            got += 1;
        }
    }

    let exec = [("service", "exec")];
    let chat = [("service", "chat")];
    let files = [("service", "files")];
    let exited = |s: &Scrape, exit| {
        s.get(
            "taojie_commands_total",
            &[("service", "exec"), ("exit", exit)],
        )
    };
    let after = scrape_until(&url, |s| {
        exited(s, "3") - exited(&before, "3") >= 1.0
            && s.get("taojie_auth_failures_total", &exec)
                > before.get("taojie_auth_failures_total", &exec)
            && s.get("taojie_files_stored_total", &files)
                > before.get("taojie_files_stored_total", &files)
    });
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(
        exited(&after, "3") - exited(&before, "3"),
        1.0,
        "{:?}",
        after.samples
    );
    assert_eq!(moved("taojie_auth_failures_total", &exec), 1.0);
    assert_eq!(
        moved(
            "taojie_connections_refused_total",
            &[("service", "exec"), ("reason", "handshake refused")]
        ),
        1.0
    );
    assert_eq!(moved("taojie_connections_accepted_total", &exec), 2.0);
    assert!(moved("taojie_received_bytes_total", &exec) > 0.0);
    assert!(moved("taojie_sent_bytes_total", &exec) > 0.0);
    assert_eq!(moved("taojie_files_stored_total", &files), 1.0);
    assert_eq!(moved("taojie_file_stored_bytes_total", &files), 100_000.0);
    assert!(moved("taojie_received_bytes_total", &files) > 100_000.0);
    assert_eq!(moved("taojie_chat_lines_total", &chat), 5.0);
    assert_eq!(after.get("taojie_chat_members", &chat), 2.0);
    assert_eq!(after.get("taojie_chat_rooms", &chat), 1.0);
    assert_eq!(moved("taojie_connections_accepted_total", &chat), 2.0);
    assert_eq!(moved("taojie_received_bytes_total", &chat), 5.0 * 8.0);
    assert!(moved("taojie_sent_bytes_total", &chat) > 5.0 * 8.0);
    let time = [("service", "time")];
    assert_eq!(moved("taojie_received_bytes_total", &time), 2.0);
    assert_eq!(moved("taojie_sent_bytes_total", &time), 4.0);
    // Nothing was dropped, and the counters of services nobody used did not move.
    assert_eq!(moved("taojie_chat_drops_total", &chat), 0.0);
    assert_eq!(
        moved(
            "taojie_connections_accepted_total",
            &[("service", "daytime")]
        ),
        0.0
    );

    // The members leave: the gauge follows.
    drop(ann);
    drop(bob);
    let left = scrape_until(&url, |s| s.get("taojie_chat_members", &chat) == 0.0);
    assert_eq!(left.get("taojie_chat_members", &chat), 0.0);
}

#[test]
fn only_get_metrics_is_served_and_a_port_alone_means_loopback() {
    let server = Server::start(
        &["serve", "echo", "--listen", "127.0.0.1:0", "--metrics", "0"],
        2,
    );
    let addr = server.addr("metrics", "tcp");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let ask = |request: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    };
    let ok = ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        ok.contains("taojie_connections_accepted_total{service=\"echo\"} 0"),
        "{ok}"
    );
    assert!(ok.ends_with("# EOF\n"), "{ok}");
    let missing = ask("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post =
        ask("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    // A request head past the bound is refused, and the endpoint goes on serving.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let _ = s.write_all(huge.as_bytes());
    // 431, or (when the close came before the answer could be read) a reset with nothing;
    // never metrics, and never a connection left hanging (a read that timed out).
    let mut reply = String::new();
    match s.read_to_string(&mut reply) {
        Ok(_) => assert!(
            reply.starts_with("HTTP/1.1 431 "),
            "an oversized head got {reply:?}"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            assert!(
                reply.is_empty() || reply.starts_with("HTTP/1.1 431 "),
                "{reply:?}"
            )
        }
        Err(e) => panic!("an oversized head was neither refused nor closed: {e}"),
    }
    let again = ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
}

/// 16 idle sockets, opened again and again as an attacker would every time they time out,
/// held every slot of the endpoint, and each scrape was closed unanswered; a scrape takes
/// the slot of the connection idle longest instead.
#[test]
fn idle_connections_do_not_starve_scrapes() {
    let server = Server::start(
        &["serve", "echo", "--listen", "127.0.0.1:0", "--metrics", "0"],
        2,
    );
    let addr = server.addr("metrics", "tcp");
    let scrape_once = |when: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(
            reply.starts_with("HTTP/1.1 200") && reply.ends_with("# EOF\n"),
            "{when}: scrape answered {reply:?}"
        );
    };
    let mut idle = Vec::new();
    for round in 0..3 {
        // Sixteen more that send nothing; the ones before stay open (or were closed for a
        // scrape).
        for _ in 0..16 {
            idle.push(TcpStream::connect(&addr).unwrap());
        }
        scrape_once(&format!("round {round}"));
    }
    // A keep-alive scraper that just scraped keeps its slot against a wave of newcomers.
    let mut keeper = TcpStream::connect(&addr).unwrap();
    keeper.set_read_timeout(Some(LIMIT)).unwrap();
    let mut reader = BufReader::new(keeper.try_clone().unwrap());
    let mut scrape_again = |when: &str| {
        keeper
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{when}: {line:?}");
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
    };
    scrape_again("first scrape");
    for _ in 0..32 {
        idle.push(TcpStream::connect(&addr).unwrap());
    }
    scrape_once("after 32 idle newcomers");
    scrape_again("after 32 idle newcomers");
    drop(idle);
}

#[test]
fn a_bad_metrics_address_is_one_clear_error() {
    let (status, out, err) = run_with_input(
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:notaport",
        ],
        b"",
        LIMIT,
    );
    assert!(!status.success());
    assert!(
        out.is_empty(),
        "nothing announced: {}",
        String::from_utf8_lossy(&out)
    );
    // One error, from the address parser every address flag shares (then clap's pointer to
    // --help).
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("--metrics") && first.ends_with("notaport is not a port (1-65535)"),
        "{err}"
    );
    assert_eq!(err.matches("error").count(), 1, "{err}");
}

#[test]
fn metrics_given_on_the_command_line_go_with_a_config_file() {
    if !crate::common::need::python("prometheus_client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("taojie.toml");
    std::fs::write(&config, "[echo]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
        2,
    );
    let url = format!("http://{}/metrics", server.addr("metrics", "tcp"));
    let before = scrape(&url);
    drop(echoed(&server.addr("echo", "tcp"), b"ping"));
    let echo = [("service", "echo")];
    let after = scrape_until(&url, |s| s.get("taojie_sent_bytes_total", &echo) >= 4.0);
    assert_eq!(
        after.get("taojie_received_bytes_total", &echo)
            - before.get("taojie_received_bytes_total", &echo),
        4.0
    );
}

/// The series that tell of trouble move when there is trouble: an exec command cut by the
/// server's --timeout and one whose client left (`commands_total{exit="timeout"|"lost"}`), a
/// chat member that stops reading (`chat_members_behind` up while it lags, then
/// `chat_drops_total` and back down, `chat_fanout_backlog` back to 0); and an endpoint beyond
/// loopback is warned about.
#[test]
fn trouble_shows_in_the_metrics() {
    if !crate::common::need::python("prometheus_client") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    keygen(&key);
    let key = key.to_str().unwrap();
    let server = Server::start(
        &[
            "serve",
            "exec",
            "--listen",
            "127.0.0.1:0",
            "--key",
            key,
            "--timeout",
            "1",
            "--metrics",
            "127.0.0.1:0",
        ],
        2,
    );
    let url = format!("http://{}/metrics", server.addr("metrics", "tcp"));
    let exec_addr = server.addr("exec", "tcp");
    let exited = |s: &Scrape, exit| {
        s.get(
            "taojie_commands_total",
            &[("service", "exec"), ("exit", exit)],
        )
    };
    let (status, _, err) = run_with_input(
        &["exec", &exec_addr, "--key", key, "--", "sleep", "30"],
        b"",
        LIMIT,
    );
    assert_eq!(status.code(), Some(124), "{err}");
    // A client that leaves while its command runs.
    let mut client = common::Proc::spawn(
        common::bin(),
        &[
            "exec",
            &exec_addr,
            "--key",
            key,
            "--",
            "sh",
            "-c",
            "echo started; sleep 30",
        ],
    );
    client.wait_stdout(b"started\n".len(), LIMIT);
    let _ = client.child.kill();
    let after = scrape_until(&url, |s| {
        exited(s, "timeout") >= 1.0 && exited(s, "lost") >= 1.0
    });
    assert_eq!(exited(&after, "timeout"), 1.0, "{:?}", after.samples);
    assert_eq!(exited(&after, "lost"), 1.0, "{:?}", after.samples);

    // Chat: a member that reads nothing while another floods the room.
    let chat = Server::start(
        &[
            "serve",
            "chat",
            "--listen",
            "127.0.0.1:0",
            "--max-lag",
            "3",
            "--metrics",
            "127.0.0.1:0",
        ],
        2,
    );
    let url = format!("http://{}/metrics", chat.addr("metrics", "tcp"));
    let room = [("service", "chat")];
    let chat_addr: std::net::SocketAddr = chat.addr("chat", "tcp").parse().unwrap();
    let silent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    silent.set_recv_buffer_size(4096).unwrap();
    silent.connect(&chat_addr.into()).unwrap();
    // A client that says nothing is let in after the broker's wait for a `/hello` (half a
    // second); on a quiet machine the whole flood is over by then, so it starts once the
    // silent member has its welcome, and the member reads nothing after it.
    silent.set_read_timeout(Some(LIMIT)).unwrap();
    let mut greeting = Vec::new();
    while !greeting.windows(11).any(|w| w == b"*** welcome") {
        let mut buf = [0u8; 512];
        let n = std::io::Read::read(&mut &silent, &mut buf).expect("the silent member's welcome");
        assert!(
            n > 0,
            "the broker closed the silent member before its welcome"
        );
        greeting.extend_from_slice(&buf[..n]);
    }
    let mut writer = TcpStream::connect(chat_addr).unwrap();
    writer.set_write_timeout(Some(LIMIT)).unwrap();
    let flood = std::thread::spawn(move || {
        let pad = "x".repeat(140);
        for chunk in 0..1000 {
            let lines: String = (0..100)
                .map(|i| format!("{:06} {pad}\n", chunk * 100 + i))
                .collect();
            if writer.write_all(lines.as_bytes()).is_err() {
                break;
            }
        }
    });
    let behind = scrape_until(&url, |s| s.get("taojie_chat_members_behind", &room) >= 1.0);
    assert!(
        behind.get("taojie_chat_members_behind", &room) >= 1.0,
        "nobody behind during the flood: {:?}",
        behind.samples
    );
    let dropped = scrape_until(&url, |s| {
        s.get("taojie_chat_drops_total", &room) >= 1.0
            && s.get("taojie_chat_members_behind", &room) == 0.0
            && s.get("taojie_chat_fanout_backlog", &room) == 0.0
    });
    assert!(
        dropped.get("taojie_chat_drops_total", &room) >= 1.0,
        "{:?}",
        dropped.samples
    );
    assert_eq!(dropped.get("taojie_chat_members_behind", &room), 0.0);
    assert_eq!(dropped.get("taojie_chat_fanout_backlog", &room), 0.0);
    assert_eq!(dropped.types["taojie_chat_fanout_backlog"], "gauge");
    drop(silent);
    flood.join().unwrap();

    // Beyond loopback: said at start.
    let mut cmd = crate::common::command(common::bin());
    cmd.args([
        "serve",
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "0.0.0.0:0",
    ]);
    let mut open = Server::spawn_capturing(cmd, 2);
    let line = open.wait_stderr("metrics served beyond loopback");
    assert!(line.contains("WARN"), "{line}");
}
