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
    let fx = Fixture::new();
    let mut srv = fx.serve(&["--classic", "127.0.0.1:0"]);
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
    // The server finishes each upload after the client closed: wait for its log lines.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fx.p("root/good.bin").exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(same(&fx.p("src/good.bin"), &fx.p("root/good.bin")));
    thread::sleep(Duration::from_millis(200));
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fx.p("root/later.bin").exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert!(same(&fx.p("src/later.bin"), &fx.p("root/later.bin")));
    srv.terminate(Duration::from_secs(10));
}
