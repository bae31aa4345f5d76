//! `taojie serve` with no service: every service on its default port on 127.0.0.1, no
//! configuration, Ctrl-C stops it cleanly.
mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::Server;

/// Moves the calling thread into the network namespace of process `pid`: the sockets it
/// opens and the processes it starts from then on are there.
fn enter_netns_of(pid: u32) {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: setns(2) on a namespace descriptor we hold open; it changes only this thread.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

#[test]
fn serves_everything_on_loopback_and_stops_on_ctrl_c() {
    // The default ports are the machine's: a `taojie serve` someone runs here (the README's
    // first command) holds them. This server gets a network namespace of its own (with only
    // lo), and the test joins it from a thread of its own.
    if !common::need::root() || !common::need::tools(&["unshare", "ip"]) {
        return;
    }
    std::thread::spawn(serves_everything_in_a_namespace)
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn serves_everything_in_a_namespace() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let script = "ip link set lo up && exec \"$0\" serve";
    let mut server = Server::start_program(
        "unshare",
        &["--net", "sh", "-c", script, common::bin()],
        11,
        &[("XDG_DATA_HOME", data_dir)],
    );
    enter_netns_of(server.child.id());
    let want = [
        ("echo", "tcp", "127.0.0.1:9007"),
        ("echo", "udp", "127.0.0.1:9007"),
        ("time", "udp", "127.0.0.1:9013"),
        ("daytime", "tcp", "127.0.0.1:9013"),
        ("sntp", "udp", "127.0.0.1:9123"),
        ("exec", "tcp", "127.0.0.1:9512"),
        ("files", "tcp", "127.0.0.1:9021"),
        ("files-web", "tcp", "127.0.0.1:9081"),
        ("chat", "tcp", "127.0.0.1:9006"),
        ("chat", "udp", "127.0.0.1:9006"),
        ("chat-web", "tcp", "127.0.0.1:9080"),
    ];
    for (service, proto, addr) in want {
        assert_eq!(server.addr(service, proto), addr, "{:?}", server.lines);
    }
    let mut s = TcpStream::connect("127.0.0.1:9007").unwrap();
    s.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    let mut page = TcpStream::connect("127.0.0.1:9080").unwrap();
    page.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9080\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut html = String::new();
    page.read_to_string(&mut html).unwrap();
    assert!(
        html.starts_with("HTTP/1.1 200") && html.contains("taojie chat"),
        "{html}"
    );
    // The files page is keyed: without the token it answers 401, and says how to log in.
    let mut files_page = TcpStream::connect("127.0.0.1:9081").unwrap();
    files_page
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9081\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    files_page.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.send_to(b"%Y", "127.0.0.1:9013").unwrap();
    let mut buf = [0u8; 64];
    let n = u.recv(&mut buf).unwrap();
    assert_eq!(n, 4, "a year: {:?}", String::from_utf8_lossy(&buf[..n]));
    // The key the services share was created on first start, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let key = data.path().join("taojie/key");
    let mode = std::fs::metadata(&key)
        .expect("key created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (status, out, _) = common::run_with_input(
        &[
            "exec",
            "127.0.0.1:9512",
            "--key",
            key.to_str().unwrap(),
            "--",
            "echo",
            "hi",
        ],
        b"",
        Duration::from_secs(20),
    );
    assert!(status.success());
    assert_eq!(out, b"hi\n");
    // Files land in the data directory's files root.
    let upload = data.path().join("note.txt");
    std::fs::write(&upload, b"kept").unwrap();
    let (status, _, err) = common::run_with_input(
        &[
            "put",
            "127.0.0.1:9021",
            "--key",
            key.to_str().unwrap(),
            upload.to_str().unwrap(),
        ],
        b"",
        Duration::from_secs(20),
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        std::fs::read(data.path().join("taojie/files/note.txt")).unwrap(),
        b"kept"
    );
    drop(s);
    server.signal(libc::SIGINT);
    let status = common::wait_timeout(&mut server.child, Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn any_port_puts_every_service_on_a_port_the_kernel_picks() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let args = ["serve", "--any-port"];
    let server = Server::start_with_env(&args, 10, &[("XDG_DATA_HOME", data_dir)]);
    let defaults = [
        "9007", "9013", "9123", "9512", "9021", "9081", "9006", "9080",
    ];
    for (service, _, addr) in &server.lines {
        let (host, port) = addr.rsplit_once(':').unwrap();
        assert_eq!(host, "127.0.0.1", "{service} on {addr}");
        assert!(
            !defaults.contains(&port),
            "{service} on its default port {addr}"
        );
    }
    let mut s = TcpStream::connect(server.addr("echo", "tcp")).unwrap();
    s.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
}

#[test]
fn one_thread_serves_every_service() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let args = ["serve", "--any-port", "--threads", "1"];
    let server = Server::start_with_env(&args, 10, &[("XDG_DATA_HOME", data_dir)]);
    // Echo: 4 MiB written while it is read back, more than the socket buffers hold, so the
    // server meets short reads and short writes on its one thread.
    let s = TcpStream::connect(server.addr("echo", "tcp")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(
        back == data,
        "echo gave back {} of {} bytes, or others",
        back.len(),
        data.len()
    );
    // Daytime over TCP answers one line and closes.
    let mut d = TcpStream::connect(server.addr("daytime", "tcp")).unwrap();
    d.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    d.read_to_string(&mut line).unwrap();
    assert!(
        line.ends_with('\n') && line.len() > 10,
        "daytime said {line:?}"
    );
    // UDP echo on the same thread.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    u.send_to(b"hello", server.addr("echo", "udp")).unwrap();
    let mut b = [0u8; 16];
    let (n, _) = u.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"hello");
}

#[test]
fn zero_threads_is_refused_with_one_line() {
    let out = std::process::Command::new(common::bin())
        .args(["serve", "echo", "--listen", "127.0.0.1:0", "--threads", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
}
