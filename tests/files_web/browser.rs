//! The page in a real Chromium (`tests/peers/web_files.py`, driven with selenium): log in
//! with the token, a name with markup stays text, a 200 MiB upload survives a server stop
//! and start with at most one chunk sent twice, a folder of 500 files, a file and a folder
//! downloaded; read-only and upload-only pages offer only what the server allows; screenshots
//! kept in `target/test-artifacts/`.
use std::path::Path;
use std::process::Command;

use super::{WAIT, bin, common};

/// Where the screenshots go.
fn artifacts() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_string()
}

/// Whether Chromium, its driver and selenium are here; in CI (which installs them, see
/// .ci/run) they must be.
fn browser_ready() -> bool {
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    let mut missing: Vec<&str> = [
        "/usr/bin/chromium",
        "/usr/bin/chromedriver",
        "/usr/bin/unzip",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if !selenium {
        missing.push("python3 selenium");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI installs Chromium, unzip and selenium (.ci/run); missing {missing:?}");
    }
    eprintln!("skipped: the browser test needs {missing:?} (see .ci/run)");
    false
}

#[test]
fn in_chromium_uploads_resume_across_a_restart_and_folders_and_downloads_work() {
    if !browser_ready() {
        return;
    }
    let out_dir = artifacts();
    let (status, out, err) = common::run_program(
        "python3",
        &[&common::peer_script("web_files.py"), bin(), &out_dir],
        b"",
        WAIT * 15,
    );
    let out = String::from_utf8_lossy(&out);
    assert!(
        status.success() && out.trim_end() == "ok",
        "the files page in Chromium (tests/peers/web_files.py):\n{out}{err}"
    );
    assert!(
        Path::new(&out_dir).join("files-web.png").exists(),
        "the screenshot"
    );
}
