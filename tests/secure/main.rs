//! The encrypted channel against the real binary: what an eavesdropper on the path sees and
//! what a meddler achieves (`channel.rs`, through the capturing [`Proxy`] here), identity keys,
//! authorized lists re-read on SIGHUP and pinned server keys (`identity.rs`), and the
//! encrypted netcat (`pipe.rs`).
mod channel;
#[path = "../common/mod.rs"]
mod common;
mod identity;
mod pipe;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::run_with_input;

/// Time limit for a command.
const LIMIT: Duration = Duration::from_secs(60);

/// A temp dir holding keys, with paths as strings for command lines.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).to_str().unwrap().to_string()
    }

    /// `taojie keygen NAME` (once); returns its path.
    fn key(&self, name: &str) -> String {
        let path = self.s(name);
        if !self.p(name).exists() {
            let (st, _, err) = run_with_input(&["keygen", &path], b"", LIMIT);
            assert!(st.success(), "keygen: {err}");
        }
        path
    }

    /// `taojie keygen --identity NAME` (once); returns (private path, public line).
    fn identity(&self, name: &str) -> (String, String) {
        let path = self.s(name);
        if !self.p(name).exists() {
            let (st, out, err) = run_with_input(&["keygen", "--identity", &path], b"", LIMIT);
            assert!(st.success(), "keygen --identity: {err}");
            let line = String::from_utf8(out).unwrap();
            assert!(line.starts_with("taojie-x25519 "), "{line}");
        }
        let line = std::fs::read_to_string(format!("{path}.pub")).unwrap();
        (path, line.trim().to_string())
    }
}

/// What the proxy does to the bytes a client sends.
#[derive(Clone, Copy, Debug)]
enum Meddle {
    /// Forward them as they are.
    Nothing,
    /// Flip one bit of the byte at this offset of the client's stream.
    Flip(usize),
    /// Leave out the client's N-th length-prefixed message (0: the first Noise message, 1:
    /// the first encrypted record, ...), counted after its 32-byte opening line.
    Drop(usize),
}

/// Bytes seen going one way.
type Log = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy on 127.0.0.1 between clients and `target` that keeps a copy of every byte it
/// forwards, both ways, and can change what a client sends.
struct Proxy {
    addr: String,
    /// Client → server bytes, all connections together.
    up: Log,
    /// Server → client bytes.
    down: Log,
}

impl Proxy {
    fn start(target: &str, meddle: Meddle) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (up, down): (Log, Log) = (Arc::default(), Arc::default());
        let (up2, down2) = (Arc::clone(&up), Arc::clone(&down));
        let target = target.to_string();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&target) else {
                    return;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = (up2.clone(), down2.clone());
                thread::spawn(move || pump(client, server, up, meddle));
                thread::spawn(move || pump(s2, c2, down, Meddle::Nothing));
            }
        });
        Proxy { addr, up, down }
    }

    /// Everything forwarded so far, both ways.
    fn seen(&self) -> Vec<u8> {
        let mut all = self.up.lock().unwrap().clone();
        all.extend_from_slice(&self.down.lock().unwrap());
        all
    }

    /// The client → server bytes forwarded so far.
    fn sent_by_clients(&self) -> Vec<u8> {
        self.up.lock().unwrap().clone()
    }
}

/// Copies `from` to `to`, recording and meddling, until `from` ends; then half-closes `to`.
fn pump(mut from: TcpStream, mut to: TcpStream, log: Log, meddle: Meddle) {
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Where the next length-prefixed message starts, for Drop.
    let mut next_msg = 32usize;
    let mut msg_index = 0usize;
    let mut forwarded = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.lock().unwrap().extend_from_slice(&buf[..n]);
        stream.extend_from_slice(&buf[..n]);
        let mut out = stream[forwarded..].to_vec();
        let mut keep = out.len();
        match meddle {
            Meddle::Nothing => {}
            Meddle::Flip(at) => {
                if (forwarded..forwarded + out.len()).contains(&at) {
                    out[at - forwarded] ^= 0x01;
                }
            }
            Meddle::Drop(which) => {
                // Forward only whole messages, so the one to leave out can be cut cleanly.
                let mut ready = Vec::new();
                let mut at = forwarded;
                if at < 32 {
                    let end = stream.len().min(32);
                    ready.extend_from_slice(&stream[at..end]);
                    at = end;
                }
                while at == next_msg && stream.len() >= next_msg + 2 {
                    let len = u16::from_be_bytes([stream[next_msg], stream[next_msg + 1]]) as usize;
                    if stream.len() < next_msg + 2 + len {
                        break;
                    }
                    if msg_index != which {
                        ready.extend_from_slice(&stream[next_msg..next_msg + 2 + len]);
                    }
                    next_msg += 2 + len;
                    msg_index += 1;
                    at = next_msg;
                }
                keep = at - forwarded;
                out = ready;
            }
        }
        if to.write_all(&out).is_err() {
            break;
        }
        forwarded += keep;
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
