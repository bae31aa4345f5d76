//! `taojie http` (the real binary) against real servers on loopback.
//!
//! `nginx.rs` is the nginx fixture; `downloads.rs` holds sizes, gzip and chunking, 404,
//! `--overwrite`, IPv6 and `--raw` against nginx; `redirects.rs` chains, loops and the limit;
//! `tls.rs` self-signed certificates and https to http; `python.rs` Python's http.server and
//! the misbehaving server of `tests/peers/http_quirks.py` (a stalled body, basic auth);
//! `bad_input.rs` URLs that must be refused before anything is sent; `messages.rs` a refused
//! connection, https to a plain port and `-o` with a directory.
mod bad_input;
#[path = "../common/mod.rs"]
mod common;
mod downloads;
mod messages;
mod nginx;
mod python;
mod redirects;
mod tls;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

/// What one run of `taojie http` did.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Standard output as text (lossy).
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success with nothing on stderr.
    pub fn assert_ok(&self) {
        assert!(
            self.status.success() && self.stderr.is_empty(),
            "{}: stderr {:?}",
            self.status,
            self.stderr
        );
    }

    /// Asserts failure with exactly one line on stderr, `taojie: error: ...` containing
    /// `want`; returns that line.
    pub fn assert_error(&self, want: &str) -> &str {
        assert!(
            !self.status.success(),
            "succeeded; stderr {:?}",
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one stderr line: {:?}", self.stderr);
        assert!(
            lines[0].starts_with("taojie: error: ") && lines[0].contains(want),
            "stderr {:?} lacks {want:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{:?}", self.stderr);
        lines[0]
    }
}

/// Runs `taojie http ARGS` (killed after 60 s).
pub fn http(args: &[&str]) -> Run {
    let mut all = vec!["http"];
    all.extend_from_slice(args);
    let (status, stdout, stderr) = common::run_with_input(&all, b"", Duration::from_secs(60));
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Writes `len` pseudo-random bytes (xorshift64*, seeded) to `path`, a MiB at a time.
pub fn write_pattern(path: &Path, len: u64, seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut left = len;
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        for word in block[..n].chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
}

/// Asserts that two files hold the same bytes (compared a MiB at a time).
pub fn assert_same_file(got: &Path, want: &Path) {
    let (mut a, mut b) = (
        std::fs::File::open(got).unwrap_or_else(|e| panic!("{}: {e}", got.display())),
        std::fs::File::open(want).unwrap(),
    );
    let (la, lb) = (a.metadata().unwrap().len(), b.metadata().unwrap().len());
    assert_eq!(la, lb, "{} has {la} bytes, want {lb}", got.display());
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            break;
        }
        b.read_exact(&mut y[..n]).unwrap();
        assert!(
            x[..n] == y[..n],
            "{} differs in the MiB at {at}",
            got.display()
        );
        at += n as u64;
    }
}

/// The names in `dir` (to see that nothing was left behind).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The head of a response printed with `-i` (up to the blank line), lower-cased.
pub fn head_of(out: &str) -> String {
    out.split("\n\n").next().unwrap_or("").to_lowercase()
}
