//! A large file received by `put` (on the server) or `get` (on the client) is written back to
//! disk as it streams and leaves the page cache once on disk: only its last windows stay
//! resident, not the whole file, so an upload does not push out everyone else's cache.
//! Measured with util-linux's `fincore` on the stored file.
use std::path::Path;
use std::process::Command;

use crate::common::need;
use crate::{Fixture, random_file, same};

/// Bytes of `path` in the page cache, as `fincore` reports them.
fn resident(path: &Path) -> u64 {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "fincore: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("fincore said {text:?}"))
}

#[test]
fn a_received_file_does_not_stay_in_the_page_cache() {
    if !need::tool("fincore") {
        return;
    }
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let size = 96u64 << 20;
    random_file(&fx.p("src/big"), size as usize, 11);
    // Two 8 MiB windows may still be in flight at the end; far less than the file.
    let at_most = 24 << 20;

    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/big"), "--to", "up", "--quiet"]);
    assert!(ok, "{err}");
    // Measured before anything reads the file back.
    let stored = fx.p("root/up/big");
    let held = resident(&stored);
    assert!(
        held <= at_most,
        "the server kept {held} of {size} bytes in the page cache"
    );
    assert!(same(&fx.p("src/big"), &stored));

    let (ok, _, err) = fx.run(&["get", &addr, "up/big", "-o", &fx.s("out"), "--quiet"]);
    assert!(ok, "{err}");
    let held = resident(&fx.p("out/big"));
    assert!(
        held <= at_most,
        "get kept {held} of {size} bytes in the page cache"
    );
    assert!(same(&fx.p("src/big"), &fx.p("out/big")));
}
