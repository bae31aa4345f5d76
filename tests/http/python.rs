//! Python servers: the standard `http.server` (HTTP/1.0 replies, its own redirects and
//! listings), and `tests/peers/http_quirks.py`, which stalls mid-body and checks basic auth.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::peer_script;
use crate::{assert_same_file, head_of, http, names, write_pattern};

/// A Python child, killed by its PID when dropped.
struct Python {
    child: Child,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` on port 0, serving `dir`, once it has said which port it got
/// ("Serving HTTP on 127.0.0.1 port N ...", printed after the bind; 30 s at most).
fn http_server(dir: &std::path::Path) -> Python {
    let mut child = Command::new("python3")
        .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    let lines = crate::common::line_channel(child.stdout.take().unwrap());
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    let port = line
        .strip_prefix("Serving HTTP on 127.0.0.1 port ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("http.server said {line:?}"));
    // Its request log goes to stderr; stdout says nothing more, but is read to the end.
    thread::spawn(move || lines.iter().count());
    Python {
        base: format!("http://127.0.0.1:{port}"),
        child,
    }
}

/// `tests/peers/http_quirks.py USER PASSWORD`, once it has printed its address (10 s at most).
fn quirks(user: &str, password: &str) -> Python {
    let mut child = Command::new("python3")
        .arg(peer_script("http_quirks.py"))
        .args([user, password])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start http_quirks.py");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let addr = line
        .strip_prefix("http_quirks tcp ")
        .unwrap_or_else(|| panic!("http_quirks.py said {line:?}"))
        .trim();
    Python {
        child,
        base: format!("http://{addr}"),
    }
}

#[test]
fn python_http_server_files_listings_redirects_and_404() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    write_pattern(&root.path().join("mib.bin"), 1 << 20, 21);
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/inner.txt"), "inner\n").unwrap();
    let py = http_server(root.path());

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("mib.bin");
    let url = format!("{}/mib.bin", py.base);
    http(&["-o", dest.to_str().unwrap(), &url]).assert_ok();
    assert_same_file(&dest, &root.path().join("mib.bin"));

    let run = http(&["-I", &url]);
    run.assert_ok();
    let head = head_of(&run.out());
    assert!(head.starts_with("http/1.0 200 ok\n"), "{head}");
    assert!(head.contains("\ncontent-length: 1048576"), "{head}");

    // /sub answers 301 to /sub/, whose listing names the file.
    let run = http(&[&format!("{}/sub", py.base)]);
    run.assert_ok();
    assert!(run.out().contains("inner.txt"), "{}", run.out());

    let missing = out.path().join("nope.bin");
    let run = http(&[
        "-o",
        missing.to_str().unwrap(),
        &format!("{}/nope", py.base),
    ]);
    run.assert_error("HTTP 404");
    assert_eq!(names(out.path()), ["mib.bin"]);
}

#[test]
fn a_body_that_stalls_times_out_and_leaves_no_file() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let py = quirks("u", "p");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("stall.bin");
    let started = Instant::now();
    let run = http(&[
        "--timeout",
        "1",
        "-o",
        dest.to_str().unwrap(),
        &format!("{}/stall", py.base),
    ]);
    let took = started.elapsed();
    // The server stalls for longer than http() lets the client run: only the client's own
    // --timeout ends it with this line, and not before that second has passed.
    run.assert_error("timed out");
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
}

#[test]
fn basic_auth_from_the_url_reaches_the_server_and_is_never_shown() {
    if !crate::common::need::tool("python3") {
        return;
    }
    // `@` and `:` percent-encoded in the URL, as they must be; the server wants them decoded.
    let (user, password) = ("alice", "s3cr3t:p@ss");
    let py = quirks(user, password);
    let host = py.base.strip_prefix("http://").unwrap();
    let url = format!("http://{user}:s3cr3t%3Ap%40ss@{host}/auth");
    let secrets = ["s3cr3t", "p%40ss", "p@ss", "YWxpY2U6czNjcjN0OnBAc3M="];

    let run = http(&[&url]);
    run.assert_ok();
    assert_eq!(run.out(), "hello alice\n");
    let raw = http(&["--raw", &url]);
    assert!(raw.status.success(), "{}", raw.stderr);
    assert!(
        raw.out().starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        raw.out()
    );
    assert!(
        raw.out().ends_with("\r\n\r\nhello alice\n"),
        "{}",
        raw.out()
    );
    assert!(
        raw.stderr.contains("\r\nAuthorization: Basic (hidden)\r\n"),
        "{}",
        raw.stderr
    );
    let wrong = http(&[&url.replace("s3cr3t", "guess")]);
    wrong.assert_error("401");
    let include = http(&["-i", &url]);
    include.assert_ok();

    for run in [&run, &raw, &wrong, &include] {
        for secret in secrets {
            assert!(
                !run.out().contains(secret) && !run.stderr.contains(secret),
                "{secret:?} shown: stdout {:?} stderr {:?}",
                run.out(),
                run.stderr
            );
        }
    }
}

/// A server that redirects to `file:` or `data:`: one error line, a failure, and no -o file
/// (before, taojie took the redirect's empty body for the document and exited 0).
#[test]
fn a_redirect_to_file_or_data_is_refused_and_writes_nothing() {
    let py = quirks("u", "p");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("passwd");
    for (path, scheme) in [("/to-file", "file"), ("/to-data", "data")] {
        let url = format!("{}{path}", py.base);
        let run = http(&["-o", dest.to_str().unwrap(), &url]);
        run.assert_error(&format!("refused a redirect to a {scheme}: URL"));
        assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
        let run = http(&[&url]);
        run.assert_error("refused a redirect");
        assert!(run.stdout.is_empty(), "{:?}", run.out());
    }
}

/// 204 KB of gzip that inflates to 200 MiB: stopped at the default cap for a compressed body
/// (100 MiB) with one error line and no -o file; `--max-filesize` caps a plain body before
/// any byte is written.
#[test]
fn a_gzip_bomb_is_capped_and_leaves_no_file() {
    let py = quirks("u", "p");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("bomb.bin");
    let bomb = format!("{}/bomb", py.base);
    let run = http(&["-o", dest.to_str().unwrap(), &bomb]);
    run.assert_error("inflates past 100 MiB");
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
    let run = http(&["--max-filesize", "10M", &bomb]);
    run.assert_error("over --max-filesize 10485760 bytes");
    assert!(
        run.stdout.len() <= 10 << 20,
        "{} bytes out",
        run.stdout.len()
    );

    let big = format!("{}/big", py.base);
    let run = http(&["--max-filesize", "1M", "-o", dest.to_str().unwrap(), &big]);
    run.assert_error("over --max-filesize 1048576 bytes");
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
    http(&["--max-filesize", "3M", "-o", dest.to_str().unwrap(), &big]).assert_ok();
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 3_000_000);
}
