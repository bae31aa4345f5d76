//! A malicious sender (tests/peers/wormhole_hostile.py, on the real client's library) against
//! `taojie receive --accept -o DIR`: names that are paths, zip entries that escape or are
//! symlinks, a zip bomb, sizes that lie, garbage and reordered records, and taojie's own entry
//! stream with an escaping or unoffered path. Each is refused with one error line; nothing is
//! written outside DIR, and nothing (not even a part file) is left in it.
use std::time::Duration;

use crate::LIMIT;
use crate::common::peer_script;
use crate::lab::Lab;

fn hostile(mode: &str, expect: &str) {
    let Some(lab) = Lab::taojie(&[]) else { return };
    let dir = lab.dir.path();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let abs = dir.join("abs-evil").display().to_string();
    let code = "17-crossover-clockwork";
    let script = peer_script("wormhole_hostile.py");
    let s = lab.spawn(
        "/usr/bin/python3",
        &[&script, mode, code, &lab.relay_url, &lab.transit, &abs],
        dir,
        b"",
    );
    let o = out.display().to_string();
    let r = lab.taojie_cmd(&["receive", code, "--accept", "-o", &o], dir, b"");
    let r = r.finish(LIMIT);
    let s = s.finish(Duration::from_secs(90));
    assert!(
        !r.status.success(),
        "{mode}: taojie accepted it\n{}",
        r.stderr
    );
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{mode}: one error line\n{}", r.stderr);
    assert!(
        errors[0].contains(expect),
        "{mode}: {:?} lacks {expect:?}",
        errors[0]
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    // Nothing in -o (no final name, no part file), nothing beside it.
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{mode}: left in -o: {left:?}");
    let mut beside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["out"], "{mode}: written outside -o");
    assert!(!std::path::Path::new(&abs).exists());
    assert!(
        s.status.success(),
        "{mode}: the hostile sender failed early: {}",
        s.stderr
    );
}

#[test]
fn a_file_name_with_dot_dot_is_refused() {
    hostile("dotdot", "unsafe name");
}

#[test]
fn an_absolute_file_name_is_refused() {
    hostile("absolute", "unsafe name");
}

#[test]
fn a_zip_entry_escaping_with_dot_dot_is_refused() {
    hostile("zip-dotdot", "unsafe zip entry");
}

#[test]
fn an_absolute_zip_entry_is_refused() {
    hostile("zip-absolute", "absolute");
}

#[test]
fn a_symlink_zip_entry_is_refused() {
    hostile("zip-symlink", "symlink");
}

#[test]
fn a_zip_bomb_is_refused() {
    hostile("zip-bomb", "more than the 1000 bytes offered");
}

#[test]
fn more_bytes_than_offered_are_refused() {
    hostile("size-more", "more than the 1000 bytes it offered");
}

#[test]
fn fewer_bytes_than_offered_are_refused() {
    hostile("size-less", "dropped after 1000 of 100000 bytes");
}

#[test]
fn garbage_records_are_refused() {
    hostile("garbage", "the peer sent a record");
}

#[test]
fn a_record_out_of_order_is_refused() {
    hostile("out-of-order", "out of order");
}

#[test]
fn an_escaping_entry_in_taojies_stream_is_refused() {
    hostile("entries-dotdot", "unsafe name");
}

#[test]
fn an_entry_that_was_not_offered_is_refused() {
    hostile("entries-unoffered", "did not offer");
}
