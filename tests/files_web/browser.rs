//! The page in a real Chromium (`tests/peers/web_files.py`, driven with selenium): log in
//! with the token, a name with markup stays text, a 200 MiB upload survives a server stop
//! and start with at most one chunk sent twice, a folder of 500 files, a file and a folder
//! downloaded; read-only and upload-only pages offer only what the server allows; screenshots
//! kept in `target/test-artifacts/`.
use std::path::Path;

use super::{WAIT, bin, common};

/// Where the screenshots go.
fn artifacts() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_string()
}

#[test]
fn in_chromium_uploads_resume_across_a_restart_and_folders_and_downloads_work() {
    if !common::need::browser() || !common::need::tool("unzip") {
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
