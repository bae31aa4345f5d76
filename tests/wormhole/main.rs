//! `taojie send`, `taojie receive` and `taojie serve relay` (Magic Wormhole), each test in a
//! network namespace of its own with only `lo`: `lab.rs` starts the servers there.
//! `interop.rs` runs the real `wormhole` client, mailbox server and transit relay against
//! taojie. The tests need root (CI is root) and the peers .ci/run installs; without them they
//! fail under CI and say so and pass elsewhere.
mod client;
#[path = "../common/mod.rs"]
mod common;
mod hostile;
mod interop;
mod lab;
mod relay;
mod resume;

use std::path::Path;
use std::time::Duration;

/// How long one side of a transfer may take (debug builds, two busy cores).
pub const LIMIT: Duration = Duration::from_secs(240);

/// Writes `len` bytes of a pseudo-random stream (xorshift: fast, and no two blocks alike).
pub fn fill_file(path: &Path, len: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// A small folder: nested directories, an empty directory, an empty file, an executable.
pub fn make_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("top.txt"), "top\n").unwrap();
    std::fs::write(root.join("a/b/deep.txt"), "deep\n".repeat(1000)).unwrap();
    std::fs::write(root.join("a/nothing"), "").unwrap();
    fill_file(&root.join("a/blob"), 300_000);
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Both trees hold the same names, kinds and file contents.
pub fn same_tree(a: &Path, b: &Path) {
    fn list(root: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let mut kids: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        kids.sort();
        for k in kids {
            let rel = k.strip_prefix(root).unwrap().display().to_string();
            if k.is_dir() {
                out.push((rel, None));
                list(root, &k, out);
            } else {
                out.push((rel, Some(std::fs::read(&k).unwrap())));
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    list(a, a, &mut x);
    list(b, b, &mut y);
    let names =
        |v: &Vec<(String, Option<Vec<u8>>)>| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&x), names(&y));
    assert!(
        x == y,
        "contents differ between {} and {}",
        a.display(),
        b.display()
    );
}
