//! taojie against the real Magic Wormhole: Debian's `wormhole` client on the other end, the
//! real mailbox server and transit relay between. A text, a 64 MiB file and a folder, each
//! way; the file also through the relay alone (no side listens, so no direct hints); a wrong
//! code on either side.
use std::path::Path;
use std::time::Duration;

use crate::lab::{Lab, both_ok};
use crate::{LIMIT, fill_file, make_tree, same_tree};

const MIB64: u64 = 64 << 20;

#[test]
fn text_from_taojie_to_wormhole() {
    let Some(lab) = Lab::python() else { return };
    let cwd = lab.dir.path();
    let code = "3-crossover-clockwork";
    let s = lab.taojie_cmd(
        &["send", "--text", "你好, wormhole", "--code", code],
        cwd,
        b"",
    );
    let r = lab.wormhole(&["receive", code], cwd, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "你好, wormhole\n");
    assert!(s.stderr.contains("text message sent"), "{}", s.stderr);
}

#[test]
fn text_from_wormhole_to_taojie() {
    let Some(lab) = Lab::python() else { return };
    let cwd = lab.dir.path();
    let code = "4-crossover-clockwork";
    let s = lab.wormhole(
        &["send", "--text", "hello taojie", "--code", code],
        cwd,
        b"",
    );
    let r = lab.taojie_cmd(&["receive", code], cwd, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert_eq!(r.stdout, b"hello taojie\n");
}

/// 64 MiB from `taojie send` to `wormhole receive`; `relay_only`: neither side listens.
fn file_to_wormhole(relay_only: bool) {
    let Some(lab) = Lab::python() else { return };
    let src = lab.dir.path().join("src");
    let dst = lab.dir.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&src.join("data.bin"), MIB64);
    let code = "5-crossover-clockwork";
    let path = src.join("data.bin").display().to_string();
    let mut sargs = vec!["send", "--code", code, path.as_str()];
    let mut rargs = vec!["receive", "--hide-progress", "--accept-file"];
    if relay_only {
        sargs.push("--no-listen");
        rargs.push("--no-listen");
    }
    rargs.push(code);
    let s = lab.taojie_cmd(&sargs, &src, b"");
    let r = lab.wormhole(&rargs, &dst, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(s.stderr.contains("Transfer complete"), "{}", s.stderr);
    let way = if relay_only {
        "Sending (relay 127.0.0.1:"
    } else {
        "Sending (direct "
    };
    assert!(s.stderr.contains(way), "{}", s.stderr);
    assert_same_file(&src.join("data.bin"), &dst.join("data.bin"));
}

/// 64 MiB from `wormhole send` to `taojie receive`.
fn file_from_wormhole(relay_only: bool) {
    let Some(lab) = Lab::python() else { return };
    let src = lab.dir.path().join("src");
    let dst = lab.dir.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    fill_file(&src.join("data.bin"), MIB64);
    let code = "6-crossover-clockwork";
    let mut sargs = vec!["send", "--hide-progress", "--code", code];
    let dstr = dst.display().to_string();
    let mut rargs = vec!["receive", code, "--accept", "-o", dstr.as_str()];
    if relay_only {
        sargs.push("--no-listen");
        rargs.push("--no-listen");
    }
    sargs.push("data.bin");
    let s = lab.wormhole(&sargs, &src, b"");
    let r = lab.taojie_cmd(&rargs, lab.dir.path(), b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    let way = if relay_only {
        "Receiving (relay 127.0.0.1:"
    } else {
        "Receiving (direct "
    };
    assert!(r.stderr.contains(way), "{}", r.stderr);
    assert_same_file(&src.join("data.bin"), &dst.join("data.bin"));
    // Nothing but the file: no part file left beside it.
    let names: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["data.bin"]);
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(
        x.len() == y.len() && x == y,
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn file_64mib_from_taojie_to_wormhole_direct() {
    file_to_wormhole(false);
}

#[test]
fn file_64mib_from_taojie_to_wormhole_through_the_relay_only() {
    file_to_wormhole(true);
}

#[test]
fn file_64mib_from_wormhole_to_taojie_direct() {
    file_from_wormhole(false);
}

#[test]
fn file_64mib_from_wormhole_to_taojie_through_the_relay_only() {
    file_from_wormhole(true);
}

#[test]
fn folder_from_taojie_to_wormhole() {
    let Some(lab) = Lab::python() else { return };
    let src = lab.dir.path().join("src");
    let dst = lab.dir.path().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    make_tree(&src.join("album"));
    let code = "7-crossover-clockwork";
    let path = src.join("album").display().to_string();
    let s = lab.taojie_cmd(&["send", "--code", code, &path], &src, b"");
    let r = lab.wormhole(
        &["receive", "--hide-progress", "--accept-file", code],
        &dst,
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    same_tree(&src.join("album"), &dst.join("album"));
}

#[test]
fn folder_from_wormhole_to_taojie() {
    let Some(lab) = Lab::python() else { return };
    let src = lab.dir.path().join("src");
    let dst = lab.dir.path().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    make_tree(&src.join("album"));
    // Debian's wormhole 0.12 zips files only: an empty directory does not travel.
    std::fs::remove_dir(src.join("album/empty")).unwrap();
    let code = "8-crossover-clockwork";
    let s = lab.wormhole(
        &["send", "--hide-progress", "--code", code, "album"],
        &src,
        b"",
    );
    let d = dst.display().to_string();
    let r = lab.taojie_cmd(
        &["receive", code, "--accept", "-o", &d],
        lab.dir.path(),
        b"",
    );
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    both_ok(&s, &r);
    assert!(
        r.stderr.contains("Unpacking the zip archive"),
        "{}",
        r.stderr
    );
    same_tree(&src.join("album"), &dst.join("album"));
}

const WRONG: &str = "the code was wrong: nobody got anything";

#[test]
fn wrong_code_when_taojie_sends() {
    let Some(lab) = Lab::python() else { return };
    let cwd = lab.dir.path();
    let s = lab.taojie_cmd(
        &[
            "send",
            "--text",
            "secret",
            "--code",
            "9-crossover-clockwork",
        ],
        cwd,
        b"",
    );
    let r = lab.wormhole(&["receive", "9-crossover-clockworx"], cwd, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(LIMIT));
    assert!(!s.status.success() && !r.status.success());
    assert!(s.stderr.contains(WRONG), "{}", s.stderr);
    assert_eq!(
        s.stderr.lines().filter(|l| l.contains("error")).count(),
        1,
        "{}",
        s.stderr
    );
    assert!(
        r.stderr.contains("WrongPasswordError") || r.stderr.contains("incorrectly"),
        "{}",
        r.stderr
    );
    assert!(!String::from_utf8_lossy(&r.stdout).contains("secret"));
}

#[test]
fn wrong_code_when_taojie_receives() {
    let Some(lab) = Lab::python() else { return };
    let cwd = lab.dir.path();
    let s = lab.wormhole(
        &[
            "send",
            "--text",
            "secret",
            "--code",
            "10-crossover-clockwork",
        ],
        cwd,
        b"",
    );
    let r = lab.taojie_cmd(&["receive", "10-crossover-clockworx", "--accept"], cwd, b"");
    let (r, s) = (r.finish(LIMIT), s.finish(Duration::from_secs(60)));
    assert!(!s.status.success() && !r.status.success());
    assert!(r.stderr.contains(WRONG), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}
