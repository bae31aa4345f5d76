//! `taojie serve files --web`: the files page, its uploads and archives, share links and
//! WebDAV, against the real binary.
//!
//! This file holds the fixture (a keyed server with its page on port 0, its login token read
//! from the line it prints) and a raw HTTP/1.1 client for requests no polite client sends;
//! `access.rs` the token, the origin and host checks, hostile paths and share links;
//! `download.rs` curl's ranges and resumes; `upload.rs` the chunked uploads and whole PUTs;
//! `archive.rs` zip and tar.gz (and a 4 GiB folder in constant memory); `dav.rs` rclone and
//! cadaver; `browser.rs` the page in a real Chromium.
mod access;
mod archive;
mod browser;
#[path = "../common/mod.rs"]
mod common;
mod dav;
mod download;
mod upload;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

// A program a test needs (.ci/run installs it): a failure under CI, a reported skip elsewhere.
use common::need::tool as need;
use common::{Server, bin};

/// Bound on every wait for a reply.
const WAIT: Duration = Duration::from_secs(60);

/// A files server with its page: a temp dir holding `root/`, `key` and room for the test.
struct Web {
    dir: tempfile::TempDir,
    server: Server,
    /// The page's address, as announced.
    addr: String,
    /// The login token, from the printed login URL.
    token: String,
}

impl Web {
    /// A keyed server (`--key`) with `extra` flags, its page on port 0.
    fn start(extra: &[&str]) -> Web {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "the web key 0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        Self::start_in(dir, "127.0.0.1:0", extra)
    }

    /// The same on an existing directory (a restart keeps root and key), the page on `web`.
    fn start_in(dir: tempfile::TempDir, web: &str, extra: &[&str]) -> Web {
        let (root, key) = (dir.path().join("root"), dir.path().join("key"));
        let mut cmd = common::command(bin());
        cmd.args([
            "serve",
            "files",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "2",
            "--web",
            web,
        ]);
        cmd.arg("--root")
            .arg(&root)
            .arg("--key")
            .arg(&key)
            .args(extra);
        let mut server = Server::spawn_capturing(cmd, 2);
        let login = server.wait_stderr("files-web login ");
        let token = login.rsplit("token=").next().unwrap().trim().to_string();
        let addr = server.addr("files-web", "tcp");
        Web {
            dir,
            server,
            addr,
            token,
        }
    }

    fn root(&self, rel: &str) -> PathBuf {
        self.dir.path().join("root").join(rel)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `Authorization: Bearer TOKEN`.
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A request with the token.
    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let auth = self.bearer();
        let mut h = vec![("Authorization", auth.as_str())];
        h.extend_from_slice(headers);
        request(&self.addr, method, target, &h, body)
    }

    /// Stops the server (SIGTERM, as Ctrl-C would) and hands back its directory.
    fn stop(mut self) -> tempfile::TempDir {
        let status = self.server.terminate(WAIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "the server did not stop cleanly: {status:?}"
        );
        self.dir
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection, written byte for byte as given (`target` is
/// sent as it is: no normalisation), the response read to the end.
fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server that refuses early may close before all of the body is taken.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

/// Runs a program to its end (bounded); its status, stdout and stderr.
fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = common::run_program(program, args, b"", WAIT * 5);
    (
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// Pseudo-random bytes, the same for the same seed.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The SHA-256 of `data`, as a `Content-Digest` value.
fn digest(data: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let sum = sha2::Sha256::digest(data);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(sum)
    )
}

/// Every regular file under `dir`, relative, with its BLAKE3.
fn tree_hashes(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let hash = blake3::hash(&std::fs::read(e.path()).unwrap())
                    .to_hex()
                    .to_string();
                out.push((rel, hash));
            }
        }
    }
    out.sort();
    out
}
