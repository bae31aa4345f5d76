//! The encrypted netcat: `listen --key` and `connect --key` carry 64 MiB of random bytes each
//! way intact, each side ending its input while the other still sends (half-close), and a
//! peer with another key gets nothing through.
use std::process::{Command, Stdio};

use super::common::{Proc, bin, wait_timeout};
use super::{Fixture, LIMIT};

/// `len` bytes from a seeded generator (xorshift), so the test needs no /dev/urandom.
fn random_file(path: &std::path::Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    std::fs::write(path, out).unwrap();
}

fn listen(fx: &Fixture, key: &str, input: &str, output: &str) -> (std::process::Child, String) {
    let mut child = crate::common::command(bin())
        .args(["listen", "127.0.0.1:0", "--key", key])
        .stdin(std::fs::File::open(fx.p(input)).unwrap())
        .stdout(std::fs::File::create(fx.p(output)).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    super::common::kill_after(&child, LIMIT * 2, "taojie listen");
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listen tcp ")
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_string();
    // Keep reading stderr so the listener never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, addr)
}

#[test]
fn sixty_four_mebibytes_cross_both_ways_with_half_close() {
    let fx = Fixture::new();
    let key = fx.key("pipe.key");
    random_file(&fx.p("to-connect"), 64 << 20, 1);
    random_file(&fx.p("to-listen"), 64 << 20, 2);
    let (mut listener, addr) = listen(&fx, &key, "to-connect", "listen-got");
    let mut client = crate::common::command(bin())
        .args(["connect", &addr, "--key", &key])
        .stdin(std::fs::File::open(fx.p("to-listen")).unwrap())
        .stdout(std::fs::File::create(fx.p("connect-got")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cst = wait_timeout(&mut client, LIMIT).expect("connect finishes");
    let lst = wait_timeout(&mut listener, LIMIT).expect("listen finishes");
    assert!(
        cst.success() && lst.success(),
        "connect {cst}, listen {lst}"
    );
    for (sent, got) in [("to-connect", "connect-got"), ("to-listen", "listen-got")] {
        let (a, b) = (
            std::fs::read(fx.p(sent)).unwrap(),
            std::fs::read(fx.p(got)).unwrap(),
        );
        assert!(
            a.len() == b.len() && a == b,
            "{sent}: {} bytes came as {}",
            a.len(),
            b.len()
        );
    }
}

#[test]
fn a_peer_with_another_key_gets_nothing_through() {
    let fx = Fixture::new();
    let key = fx.key("pipe.key");
    let other = fx.key("other.key");
    std::fs::write(fx.p("secret"), b"listener's secret\n").unwrap();
    let (mut listener, addr) = listen(&fx, &key, "secret", "listen-got");
    let mut stranger = Proc::spawn(bin(), &["connect", &addr, "--key", &other]);
    stranger.feed(b"stranger's words\n".to_vec());
    let (st, out, err) = stranger.finish(LIMIT);
    assert!(!st.success());
    assert!(out.is_empty(), "the stranger got {out:?}");
    assert!(err.contains("wrong key"), "{err}");
    // The listener is still waiting for the right peer, who gets through.
    let mut friend = Proc::spawn(bin(), &["connect", &addr, "--key", &key]);
    friend.feed(b"friend's words\n".to_vec());
    let (st, out, err) = friend.finish(LIMIT);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"listener's secret\n");
    assert!(wait_timeout(&mut listener, LIMIT).unwrap().success());
    assert_eq!(
        std::fs::read(fx.p("listen-got")).unwrap(),
        b"friend's words\n"
    );
}

/// Runs `tests/peers/noise_pipe.py ARGS` (the pipe written again in Python, with another
/// Noise library) with `input` from the file `input` and its stdout into `output`.
fn python_pipe(fx: &Fixture, args: &[&str], input: &str, output: &str) -> std::process::Child {
    let script = super::common::peer_script("noise_pipe.py");
    let child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(std::fs::File::open(fx.p(input)).unwrap())
        .stdout(std::fs::File::create(fx.p(output)).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    super::common::kill_after(&child, LIMIT * 2, "noise_pipe.py");
    child
}

/// What `sent` and `got` hold is the same, else a failure naming their sizes.
fn assert_same(fx: &Fixture, sent: &str, got: &str) {
    let (a, b) = (
        std::fs::read(fx.p(sent)).unwrap(),
        std::fs::read(fx.p(got)).unwrap(),
    );
    assert!(
        a.len() == b.len() && a == b,
        "{sent}: {} bytes came as {}",
        a.len(),
        b.len()
    );
}

/// A pipe peer that is not taojie: a Python client (noiseprotocol) of `taojie listen --key`,
/// then `taojie connect --key` to a Python listener: 4 MiB each way, half-close both ways.
#[test]
fn an_independent_python_peer_pipes_both_ways_with_taojie() {
    if !super::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let key = fx.key("pipe.key");
    random_file(&fx.p("a"), 4 << 20, 7);
    random_file(&fx.p("b"), 4 << 20, 8);

    // Python connects to taojie listen.
    let (mut listener, addr) = listen(&fx, &key, "a", "listen-got");
    let mut py = python_pipe(&fx, &["connect", &addr, &key], "b", "py-got");
    let pst = wait_timeout(&mut py, LIMIT).expect("noise_pipe.py connect finishes");
    let lst = wait_timeout(&mut listener, LIMIT).expect("listen finishes");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut py.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        pst.success() && lst.success(),
        "python {pst} ({err}), listen {lst}"
    );
    assert_same(&fx, "a", "py-got");
    assert_same(&fx, "b", "listen-got");

    // taojie connects to a Python listener.
    let mut py = python_pipe(&fx, &["listen", &key], "a", "py-listen-got");
    let mut err = std::io::BufReader::new(py.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listen tcp ")
        .unwrap_or_else(|| panic!("noise_pipe.py said {line:?}"))
        .to_string();
    let mut client = crate::common::command(bin())
        .args(["connect", &addr, "--key", &key])
        .stdin(std::fs::File::open(fx.p("b")).unwrap())
        .stdout(std::fs::File::create(fx.p("connect-got")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cst = wait_timeout(&mut client, LIMIT).expect("connect finishes");
    let pst = wait_timeout(&mut py, LIMIT).expect("noise_pipe.py listen finishes");
    assert!(
        cst.success() && pst.success(),
        "connect {cst}, python {pst}"
    );
    assert_same(&fx, "a", "connect-got");
    assert_same(&fx, "b", "py-listen-got");
}
