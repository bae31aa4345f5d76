//! The one way a test needs something this machine may lack: root, a program, a Python
//! module, a browser.
//!
//! Each function says whether the need is met. When it is not:
//! - under CI (`CI` set and not `false`/`0`: `.ci/run` exports `CI=true`, and installs every
//!   peer and runs as root), the test fails with the reason: a CI run that cannot run a test
//!   is a broken setup, never a pass;
//! - elsewhere the test is skipped, and says so where `cargo test` shows it: a line
//!   `SKIP binary::test: needs ...` on standard error as it happens (not captured by the test
//!   harness), and, when the test binary exits, a summary after its `test result` line that
//!   names every test it skipped and why. The test itself returns early:
//!
//! ```ignore
//! if !need::root() || !need::tool("nft") {
//!     return;
//! }
//! ```
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};

/// Tests skipped in this process: (test, reason).
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// Answers already found, by need, so that a binary checks each program or module once.
static FOUND: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);

/// Whether this run is CI's, where every need must be met.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The test running on this thread (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed thread)")
        .to_string()
}

/// This test binary's name, without cargo's hash (`files-0a1b2c3d` → `files`).
fn binary() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .unwrap_or("tests");
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem.to_string(),
    }
}

/// Records a need that is not met: a panic under CI, else a reported skip. Returns `false`,
/// for `if !need::...() { return; }`.
pub fn unmet(reason: &str) -> bool {
    let test = test_name();
    if in_ci() {
        panic!("{test} needs {reason}: CI (.ci/run) provides it, so this is a broken setup");
    }
    let line = format!("SKIP {}::{test}: needs {reason}\n", binary());
    // Straight to the stderr handle: the harness captures only print!/eprint!.
    let _ = std::io::stderr().write_all(line.as_bytes());
    SKIPPED.lock().unwrap().push((test, reason.to_string()));
    static SUMMARY: Once = Once::new();
    SUMMARY.call_once(|| {
        #[allow(unsafe_code)]
        // SAFETY: atexit(3) with a function that takes nothing and does not unwind.
        unsafe {
            libc::atexit(summary);
        }
    });
    false
}

/// Printed when the test binary exits (after libtest's `test result` line): every test that
/// was skipped, so that a skip is counted where the results are.
extern "C" fn summary() {
    let skipped = SKIPPED.lock().map(|s| s.clone()).unwrap_or_default();
    let mut text = format!(
        "SKIPPED {} test(s) of {} (counted as passed above, not run; CI=true runs them):\n",
        skipped.len(),
        binary()
    );
    for (test, reason) in skipped {
        text.push_str(&format!("    SKIP {test}: needs {reason}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Looks `what` up once per process with `check`.
fn cached(what: &str, check: impl FnOnce() -> bool) -> bool {
    if let Some(&known) = FOUND.lock().unwrap().get_or_insert_default().get(what) {
        return known;
    }
    let found = check();
    FOUND
        .lock()
        .unwrap()
        .get_or_insert_default()
        .insert(what.to_string(), found);
    found
}

/// Root (CI runs as root): network namespaces, mounts, switching users.
pub fn root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    root || unmet("root")
}

/// Where `program` is: an absolute path that exists, or the first match on `PATH`, then in
/// the system directories a user's `PATH` may leave out (Debian puts nginx, nats-server and
/// nft in /usr/sbin).
pub fn find(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = Path::new(program);
        return executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(Into::into))
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// A program (`ncat`, `nginx`, `/usr/bin/chromium`), from `.ci/run`'s packages.
pub fn tool(program: &str) -> bool {
    cached(&format!("tool {program}"), || find(program).is_some())
        || unmet(&format!("{program} (.ci/run installs it)"))
}

/// Every program in `programs`; all that are missing are named in one skip.
pub fn tools(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| !cached(&format!("tool {p}"), || find(p).is_some()))
        .collect();
    missing.is_empty() || unmet(&format!("{} (.ci/run installs them)", missing.join(", ")))
}

/// A module importable by `python3` (`ntplib`, `noise`, `pyte`), from `.ci/run`'s pip line.
pub fn python(module: &str) -> bool {
    let found = cached(&format!("python {module}"), || {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    found || unmet(&format!("python3 with {module} (.ci/run installs it)"))
}

/// Chromium, its driver and selenium: a real browser driven from Python.
pub fn browser() -> bool {
    tools(&["/usr/bin/chromium", "/usr/bin/chromedriver"]) && python("selenium")
}
