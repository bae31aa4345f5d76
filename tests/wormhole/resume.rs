//! Resume between two taojie peers: a transfer killed at about half, run again with a new
//! code, moves only the rest — counted by nftables on the namespace's `lo`, not by taojie —
//! and the file arrives byte-identical.
use std::time::{Duration, Instant};

use crate::lab::{Lab, both_ok, nft};
use crate::{LIMIT, fill_file};

/// The size: 1 GiB (two taojie peers seal with ring's ChaCha20-Poly1305, fast even in
/// a debug build).
const SIZE: u64 = 1 << 30;

/// TCP bytes sent on the namespace's loopback since the counter was made.
fn wire_bytes(ns: &str) -> u64 {
    let text = nft(ns, "list counter inet tj wire");
    let after = text.split("bytes ").nth(1).expect("a byte count");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_killed_transfer_resumes_and_moves_only_the_rest() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    nft(&lab.ns, "add table inet tj");
    nft(&lab.ns, "add counter inet tj wire");
    nft(
        &lab.ns,
        "add chain inet tj out { type filter hook output priority 0 ; }",
    );
    nft(
        &lab.ns,
        "add rule inet tj out meta l4proto tcp counter name wire",
    );
    let dir = lab.dir.path();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&dir.join("big.bin"), SIZE);
    let d = dst.display().to_string();
    let part = dst.join(".big.bin.taojie-part");

    // First run: the receiver is killed once about half has landed.
    let mut s = lab.taojie_cmd(&["send", "big.bin"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.taojie_cmd(&["receive", &code, "--accept", "-o", &d], dir, b"");
    let deadline = Instant::now() + LIMIT;
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < SIZE / 2 {
        assert!(Instant::now() < deadline, "the transfer did not reach half");
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill();
    let s = s.finish(LIMIT);
    assert!(!s.status.success(), "the sender noticed the receiver die");
    assert!(
        !dst.join("big.bin").exists(),
        "nothing under the final name yet"
    );
    let held = std::fs::metadata(&part).unwrap().len();
    assert!((SIZE / 2..SIZE).contains(&held), "{held}");

    // Second run, a new code: only the rest moves.
    let before = wire_bytes(&lab.ns);
    let mut s = lab.taojie_cmd(&["send", "big.bin"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.taojie_cmd(&["receive", &code, "--accept", "-o", &d], dir, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    let moved = wire_bytes(&lab.ns) - before;
    let rest = SIZE - held;
    assert!(
        moved >= rest && moved < rest + rest / 10 + (1 << 20),
        "{moved} bytes on the wire for the {rest} missing (of {SIZE}; {held} held)"
    );
    assert!(r.stderr.contains("already held"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(dir.join("big.bin")).unwrap(),
        std::fs::read(dst.join("big.bin")).unwrap()
    );
    assert!(!part.exists());
}

#[test]
fn a_part_file_that_differs_from_the_source_is_sent_again_whole() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&dir.join("f.bin"), 4 << 20);
    // A part file of the same name whose bytes are not the source's prefix.
    std::fs::write(dst.join(".f.bin.taojie-part"), vec![0xAAu8; 1 << 20]).unwrap();
    let d = dst.display().to_string();
    let mut s = lab.taojie_cmd(&["send", "f.bin"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.taojie_cmd(&["receive", &code, "--accept", "-o", &d], dir, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(r.stderr.contains("0 bytes already held"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(dir.join("f.bin")).unwrap(),
        std::fs::read(dst.join("f.bin")).unwrap()
    );
}

#[test]
fn a_killed_folder_transfer_resumes_from_its_staging_directory() {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let dst = dir.join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    crate::make_tree(&dir.join("album"));
    fill_file(&dir.join("album/a/big.bin"), 64 << 20);
    let d = dst.display().to_string();
    let staging = dst.join(".album.taojie-part");
    let part = staging.join("a/.big.bin.taojie-part");

    let mut s = lab.taojie_cmd(&["send", "album"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.taojie_cmd(&["receive", &code, "--accept", "-o", &d], dir, b"");
    let deadline = Instant::now() + LIMIT;
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 32 << 20 {
        assert!(
            Instant::now() < deadline,
            "the transfer did not reach half of big.bin"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill();
    let _ = s.finish(LIMIT);
    assert!(
        !dst.join("album").exists(),
        "the folder has no final name before it is whole"
    );
    assert!(staging.is_dir());

    let mut s = lab.taojie_cmd(&["send", "album"], dir, b"");
    let code = s.wait_code(Duration::from_secs(30));
    let r = lab.taojie_cmd(&["receive", &code, "--accept", "-o", &d], dir, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    // Files completed in the first run and the big file's prefix were not sent again.
    let held: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("already held"))
        .collect();
    assert!(
        held.len() == 1 && !held[0].ends_with(" 0 bytes already held"),
        "{}",
        r.stderr
    );
    crate::same_tree(&dir.join("album"), &dst.join("album"));
    assert!(!staging.exists());
}
