//! The seed's classic upload, from a Python program written like the seed's.
use super::*;

const SEED_UPLOADER: &str = r#"
import socket, struct, json, hashlib, hmac, os, sys
host, port = sys.argv[1].rsplit(':', 1)
key, path, mode = open(sys.argv[2], 'rb').read(), sys.argv[3], sys.argv[4]
lie = mode == 'lie'
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((host, int(port)))
msg = s.recv(32)
while len(msg) < 32:
    msg += s.recv(32 - len(msg))
s.sendall(hmac.new(key, msg, hashlib.sha256).digest())
if mode == 'huge':
    s.sendall(struct.pack('i', 0x7fffffff))
    s.settimeout(10)
    assert s.recv(1) == b'', 'the server kept reading'
    sys.exit(0)
data = open(path, 'rb').read()
md5 = hashlib.md5(data if not lie else data + b'!').hexdigest()
header = {'file_size': len(data), 'file_name': '/a/b/c/' + os.path.basename(path), 'md5': md5}
head_bytes = bytes(json.dumps(header), encoding='utf-8')
s.send(struct.pack('i', len(head_bytes)))
s.send(head_bytes)
s.sendall(data)
s.close()
"#;

#[test]
fn a_seed_style_python_uploader_works_against_classic_and_a_wrong_md5_is_rejected() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let fx = Fixture::new();
    let mut srv = fx.serve_logged(&["--classic", "127.0.0.1:0"]);
    let addr = srv.addr("files-classic", "tcp");
    random_file(&fx.p("src/good.bin"), 300_000, 5);
    random_file(&fx.p("src/bad.bin"), 300_000, 6);
    for (file, lie) in [("src/good.bin", "truth"), ("src/bad.bin", "lie")] {
        let (st, _, err) = run_program(
            "python3",
            &["-c", SEED_UPLOADER, &addr, &fx.s("key"), &fx.s(file), lie],
            b"",
            LIMIT,
        );
        assert!(st.success(), "{err}");
    }
    // The server finishes each upload after the client closed: its log says when, and
    // the bad one has been judged (not merely not yet written) before its absence counts.
    let line = srv.wait_stderr("classic upload verified");
    assert!(line.contains("good.bin"), "{line}");
    assert!(same(&fx.p("src/good.bin"), &fx.p("root/good.bin")));
    let line = srv.wait_stderr("classic upload discarded");
    assert!(
        line.contains("bad.bin") && line.contains("md5 mismatch"),
        "{line}"
    );
    assert!(!fx.p("root/bad.bin").exists());
    assert!(
        !fx.p("root/a").exists(),
        "the sender's directories were kept"
    );
    let names: Vec<_> = std::fs::read_dir(fx.p("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // A header length of 2 GiB - 1 is refused from the prefix alone; the server lives on.
    random_file(&fx.p("src/later.bin"), 1000, 8);
    for (file, mode) in [("src/later.bin", "huge"), ("src/later.bin", "truth")] {
        let (st, _, err) = run_program(
            "python3",
            &["-c", SEED_UPLOADER, &addr, &fx.s("key"), &fx.s(file), mode],
            b"",
            LIMIT,
        );
        assert!(st.success(), "{err}");
    }
    let line = srv.wait_stderr("classic upload verified");
    assert!(line.contains("later.bin"), "{line}");
    assert!(same(&fx.p("src/later.bin"), &fx.p("root/later.bin")));
    srv.terminate(Duration::from_secs(10));
}

/// The seed's upload header for `name` (`size` bytes to follow), length prefix included.
fn classic_header(name: &str, size: u64) -> Vec<u8> {
    let head = serde_json::json!({"file_size": size, "file_name": name, "md5": "0"}).to_string();
    let mut out = (head.len() as i32).to_le_bytes().to_vec();
    out.extend_from_slice(head.as_bytes());
    out
}

/// A classic connection past the seed's HMAC challenge.
fn classic_connect(addr: &str, key: &[u8]) -> TcpStream {
    use hmac::{KeyInit, Mac};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut challenge = [0u8; 32];
    s.read_exact(&mut challenge).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&challenge);
    s.write_all(&mac.finalize().into_bytes()).unwrap();
    s
}

/// Eight classic uploads naming a file that another upload holds each wait for its lock, and
/// that wait (with the writes and fsyncs) runs off the async workers: the native listener
/// answers a new connection with its banner while all eight are still waiting, i.e. before
/// the server gives up on the first of them and closes it.
#[test]
fn classic_uploads_waiting_for_a_held_file_do_not_hold_up_the_native_listener() {
    let fx = Fixture::new();
    let srv = fx.serve(&["--classic", "127.0.0.1:0"]);
    let classic = srv.addr("files-classic", "tcp");
    // Held as a native upload in progress holds it.
    let held = std::fs::File::create(fx.p("root/.held.taojie-part")).unwrap();
    held.lock().unwrap();
    let key = std::fs::read(fx.p("key")).unwrap();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(classic_connect(&classic, &key));
    }
    for mut s in conns {
        s.write_all(&classic_header("held", 5)).unwrap();
        let tx = closed_tx.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(Instant::now());
        });
    }
    // A server that blocks its workers is blocked by now; one that does not answers at once.
    thread::sleep(Duration::from_millis(200));
    let mut native = TcpStream::connect(srv.addr("files", "tcp")).unwrap();
    native.set_read_timeout(Some(LIMIT)).unwrap();
    let mut banner = [0u8; 8];
    native.read_exact(&mut banner).unwrap();
    let banner_at = Instant::now();
    assert_eq!(&banner, b"taojie/2");
    // Every classic connection is refused in the end (the file stays held).
    let mut closes: Vec<Instant> = (0..8)
        .map(|_| closed.recv_timeout(LIMIT).expect("the server closes it"))
        .collect();
    closes.sort();
    assert!(
        banner_at < closes[0],
        "the native banner came {:?} after the first classic connection was given up",
        banner_at - closes[0]
    );
    drop(held);
}
