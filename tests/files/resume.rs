//! Interrupted transfers resume with only the missing bytes; a flipped byte is caught.
use super::*;

/// Starts `taojie ARGS`, SIGKILLs it once `watch` has grown past `half` bytes.
fn kill_halfway(args: &[&str], watch: &Path, half: u64) {
    let mut child = crate::common::command(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        let len = std::fs::metadata(watch).map(|m| m.len()).unwrap_or(0);
        if len > half {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

const BIG: usize = 512 << 20;

/// Held by each test with a [`BIG`] file: one at a time, so that the suite never holds three
/// of them (and their copies) on disk at once, nor moves them through the machine together.
fn one_big_file_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static BIG_FILE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    BIG_FILE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn an_interrupted_put_resumes_sending_only_the_rest() {
    let _big = one_big_file_at_a_time();
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    random_file(&fx.p("src/big"), BIG, 11);
    let (key, file) = (fx.s("key"), fx.s("src/big"));

    let first = Proxy::start(&srv.addr("files", "tcp"), None);
    let part = fx.p("root/.big.taojie-part");
    kill_halfway(
        &["put", &first.addr, &file, "--key", &key],
        &part,
        BIG as u64 / 2,
    );
    assert!(
        !fx.p("root/big").exists(),
        "a partial file at the final name"
    );

    let second = Proxy::start(&srv.addr("files", "tcp"), None);
    let (ok, out, err) = fx.run(&["put", &second.addr, &file, "--json"]);
    assert!(ok, "{err}");
    let report = json(&out);
    assert!(
        report["files"][0]["resumed_from"].as_u64().unwrap() >= BIG as u64 / 4,
        "{out}"
    );
    assert!(
        second.bytes_up() < BIG as u64 * 3 / 4,
        "{} bytes the second time",
        second.bytes_up()
    );
    assert!(same(&fx.p("src/big"), &fx.p("root/big")));
    assert!(!part.exists() && !fx.p("root/.big.taojie-state").exists());
}

#[test]
fn an_interrupted_put_with_no_resume_leaves_nothing_on_the_server() {
    let _big = one_big_file_at_a_time();
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    random_file(&fx.p("src/big"), BIG, 12);
    let (key, file) = (fx.s("key"), fx.s("src/big"));
    let part = fx.p("root/.big.taojie-part");
    let args = [
        "put",
        &srv.addr("files", "tcp"),
        &file,
        "--key",
        &key,
        "--no-resume",
    ];
    kill_halfway(&args, &part, BIG as u64 / 2);
    // The server notices the broken connection and removes what arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    while part.exists() || fx.p("root/.big.taojie-state").exists() {
        assert!(Instant::now() < deadline, "the partial file was kept");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!fx.p("root/big").exists());
}

#[test]
fn an_interrupted_get_resumes_fetching_only_the_rest() {
    let _big = one_big_file_at_a_time();
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    random_file(&fx.p("root/big"), BIG, 13);
    let (key, out_dir) = (fx.s("key"), fx.s("out"));

    let first = Proxy::start(&srv.addr("files", "tcp"), None);
    let part = fx.p("out/.big.taojie-part");
    kill_halfway(
        &["get", &first.addr, "big", "-o", &out_dir, "--key", &key],
        &part,
        BIG as u64 / 2,
    );
    assert!(
        !fx.p("out/big").exists(),
        "a partial file at the final name"
    );

    let second = Proxy::start(&srv.addr("files", "tcp"), None);
    let (ok, out, err) = fx.run(&["get", &second.addr, "big", "-o", &out_dir, "--json"]);
    assert!(ok, "{err}");
    let report = json(&out);
    let wire = second.bytes_down();
    // The client records progress every 64 MiB, so a SIGKILL costs it up to that much.
    assert!(wire < BIG as u64, "{wire} bytes the second time");
    assert!(report["wire_bytes"].as_u64().unwrap() < wire);
    assert!(report["files"][0]["resumed_from"].as_u64().unwrap() > 0);
    assert!(same(&fx.p("root/big"), &fx.p("out/big")));
    assert!(!part.exists());
}

#[test]
fn a_byte_flipped_in_transit_is_caught_and_nothing_changed_is_kept() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    random_file(&fx.p("src/f"), 8 << 20, 3);
    let proxy = Proxy::start(&srv.addr("files", "tcp"), Some(2_000_000));
    let (ok, _, err) = fx.run(&["put", &proxy.addr, &fx.s("src/f")]);
    // The record layer catches it at once: the server refuses the changed record and closes.
    assert!(!ok);
    assert!(err.contains("connection"), "{err}");
    // Nothing under the file's name; what came before the flip (every byte of it verified)
    // waits as a partial upload, and a clean retry finishes the file, byte for byte.
    assert!(!fx.p("root/f").exists(), "a file was put in place");
    let names: Vec<String> = std::fs::read_dir(fx.p("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.contains(".taojie-")), "{names:?}");
    let (ok, _, err) = fx.run(&["put", &srv.addr("files", "tcp"), &fx.s("src/f")]);
    assert!(ok, "{err}");
    assert!(same(&fx.p("src/f"), &fx.p("root/f")));
}
