//! `taojie serve files`, `put`, `get`, `ls` against the real binary.
//!
//! This file holds the shared fixture, the counting proxy and the plain round trips;
//! `resume.rs` the interrupted transfers and corruption in transit; `hostile.rs` hostile names,
//! wrong keys and server modes; `classic.rs` the seed-style Python uploader; `disk_full.rs`
//! uploads into a small tmpfs that fills; `malicious.rs` a hostile server against `get`;
//! `race.rs` a local user swapping directories under the root; `wire.rs` the hand-made peers;
//! `peer.rs` a client written again in Python (`tests/peers/files_peer.py`);
//! `messages.rs` what the clients say about a wrong port, a key, a link or a file already there;
//! `page_cache.rs` how much of a received file stays in the page cache.
mod classic;
#[path = "../common/mod.rs"]
mod common;
mod disk_full;
mod hostile;
mod interrupt;
mod malicious;
mod messages;
mod page_cache;
mod peer;
mod race;
mod resume;
mod wire;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, bin, need, run_program, run_with_input, wait_timeout};
use taojie::files::protocol::{FileHeader, Msg};

const LIMIT: Duration = Duration::from_secs(120);

/// A temp dir with a key file, a server root and room for client files.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["root", "src", "out"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        write_key(&dir.path().join("key"), "the right key 0123456789abcdef");
        write_key(&dir.path().join("wrong"), "a different key 0123456789abcd");
        Fixture { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).to_str().unwrap().to_string()
    }
    fn serve(&self, extra: &[&str]) -> Server {
        let (root, key) = (self.s("root"), self.s("key"));
        let mut args = vec!["serve", "files", "--listen", "127.0.0.1:0", "--root", &root];
        args.extend(["--key", &key]);
        args.extend(extra);
        let n = if extra.contains(&"--classic") { 2 } else { 1 };
        Server::start(&args, n)
    }

    /// Like [`Fixture::serve`], with the server's log read (`Server::wait_stderr`).
    fn serve_logged(&self, extra: &[&str]) -> Server {
        let (root, key) = (self.s("root"), self.s("key"));
        let mut cmd = crate::common::command(bin());
        cmd.args(["serve", "files", "--listen", "127.0.0.1:0", "--root", &root])
            .args(["--key", &key])
            .args(extra);
        let n = if extra.contains(&"--classic") { 2 } else { 1 };
        Server::spawn_capturing(cmd, n)
    }
    /// Runs `taojie ARGS --key KEY`; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let key = self.s("key");
        let mut all = args.to_vec();
        all.extend(["--key", &key]);
        let (st, out, err) = run_with_input(&all, b"", LIMIT);
        (st.success(), String::from_utf8_lossy(&out).into(), err)
    }
}

fn write_key(path: &Path, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, key).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for hundreds of MiB.
fn random_file(path: &Path, len: usize, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

fn same(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// A TCP proxy on 127.0.0.1 that counts the bytes going to the server and can flip one byte
/// of that direction at a given offset.
struct Proxy {
    addr: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Proxy {
    fn start(target: &str, flip_at: Option<u64>) -> Proxy {
        Self::with(target, flip_at, None)
    }

    /// A counting proxy that carries at most `rate` bytes per second each way: a slow link.
    fn slow(target: &str, rate: u64) -> Proxy {
        Self::with(target, None, Some(rate))
    }

    fn with(target: &str, flip_at: Option<u64>, rate: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (target, counter, back) = (target.to_string(), up.clone(), down.clone());
        thread::spawn(move || {
            for client in listener.incoming().take(8) {
                let Ok(client) = client else { break };
                let server = TcpStream::connect(&target).unwrap();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (counter, back) = (counter.clone(), back.clone());
                thread::spawn(move || pump(client, server, Some(counter), flip_at, rate));
                thread::spawn(move || pump(s2, c2, Some(back), None, rate));
            }
        });
        Proxy { addr, up, down }
    }
    fn bytes_up(&self) -> u64 {
        self.up.load(Ordering::SeqCst)
    }
    fn bytes_down(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    count: Option<Arc<AtomicU64>>,
    flip: Option<u64>,
    rate: Option<u64>,
) {
    // A slow link passes small pieces, so that it is slow evenly.
    let mut buf = vec![
        0u8;
        if rate.is_some() {
            16 * 1024
        } else {
            256 * 1024
        }
    ];
    let mut pos = 0u64;
    let start = Instant::now();
    loop {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(pos as f64 / rate as f64);
            thread::sleep(due.saturating_sub(start.elapsed()));
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = flip
            && at >= pos
            && at < pos + n as u64
        {
            buf[(at - pos) as usize] ^= 0x01;
        }
        pos += n as u64;
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[test]
fn round_trips_keep_every_byte_and_the_hashes_agree() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let tree = fx.p("src/tree");
    std::fs::create_dir_all(tree.join("a/b/深い dir")).unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("one"), b"x").unwrap();
    std::fs::write(tree.join("a/b/深い dir/名字 with space.txt"), "héllo\n").unwrap();
    random_file(&tree.join("a/big"), 64 << 20, 7);

    let (ok, out, err) = fx.run(&["put", &addr, &fx.s("src/tree"), "--to", "up", "--json"]);
    assert!(ok, "{err}");
    let put = json(&out);
    assert_eq!(put["verified"], 4, "{out}");
    let (ok, out, err) = fx.run(&["get", &addr, "up/tree", "-o", &fx.s("out"), "--json"]);
    assert!(ok, "{err}");
    let got = json(&out);
    assert_eq!(got["verified"], 4);
    for rel in ["empty", "one", "a/b/深い dir/名字 with space.txt", "a/big"] {
        assert!(
            same(&tree.join(rel), &fx.p(&format!("root/up/tree/{rel}"))),
            "{rel}"
        );
        assert!(
            same(&tree.join(rel), &fx.p(&format!("out/tree/{rel}"))),
            "{rel}"
        );
    }
    // BLAKE3 as the receiver computed it, the same on both trips.
    let hash = |v: &serde_json::Value, suffix: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"].as_str().unwrap().ends_with(suffix))
            .unwrap()["blake3"]
            .clone()
    };
    assert_eq!(hash(&put, "a/big"), hash(&got, "a/big"));
    assert_eq!(
        hash(&put, "empty"),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );

    let (ok, out, _) = fx.run(&["ls", &addr, "up/tree"]);
    assert!(ok);
    assert!(
        out.contains("a/") && out.contains("empty") && out.contains("one"),
        "{out}"
    );
    assert!(!fx.p("root").read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("taojie-part")
    }));
}

#[test]
fn existing_files_are_kept_unless_overwrite_is_asked_for() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    std::fs::write(fx.p("src/f"), b"new").unwrap();
    std::fs::write(fx.p("root/f"), b"old").unwrap();
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/f")]);
    assert!(!ok);
    assert!(
        err.contains("already exists") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(fx.p("root/f")).unwrap(), b"old");
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/f"), "--overwrite"]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(fx.p("root/f")).unwrap(), b"new");
}

#[test]
fn several_clients_at_once_each_get_their_file_verified() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let key = fx.s("key");
    let mut children = Vec::new();
    for i in 0..4 {
        let src = fx.p(&format!("src/c{i}"));
        random_file(&src, 6 << 20, 100 + i);
        let child = crate::common::command(bin())
            .args([
                "put",
                &addr,
                src.to_str().unwrap(),
                "--key",
                &key,
                "--quiet",
            ])
            .spawn()
            .unwrap();
        children.push(child);
    }
    for mut c in children {
        let st = wait_timeout(&mut c, LIMIT).expect("put finishes");
        assert!(st.success());
    }
    for i in 0..4 {
        let name = format!("c{i}");
        assert!(same(
            &fx.p(&format!("src/{name}")),
            &fx.p(&format!("root/{name}"))
        ));
    }
    assert!(
        !same(&fx.p("root/c0"), &fx.p("root/c1")),
        "the four files must differ"
    );
}
