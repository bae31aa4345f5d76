//! What put, get and ls say when the user's request is not quite what they meant: a wrong
//! port, no key or a file that is no key, a link, a file already there, a file where a
//! directory was meant, an empty directory, a missing file (issue 24).
use super::*;

/// Runs `taojie ARGS` with taojie's own key looked for in `data` (not the user's); returns
/// (exit code, stdout, stderr).
fn run_in<A: AsRef<std::ffi::OsStr>>(data: &Path, args: &[A]) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_timeout(&mut child, LIMIT).unwrap_or_else(|| {
        let _ = child.kill();
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        panic!("taojie {shown:?} did not finish in {LIMIT:?}")
    });
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

#[test]
fn a_wrong_port_says_what_answered_there() {
    let fx = Fixture::new();
    let chat = Server::start(&["serve", "chat", "--listen", "127.0.0.1:0"], 1);
    let echo = Server::start(&["serve", "echo", "--listen", "127.0.0.1:0"], 1);
    let (chat, echo) = (chat.addr("chat", "tcp"), echo.addr("echo", "tcp"));
    let file = fx.s("src/f");
    std::fs::write(&file, b"x").unwrap();
    let out = fx.s("out");
    let cases: Vec<Vec<String>> = [&chat, &echo]
        .iter()
        .flat_map(|addr| {
            [
                vec!["put", addr, &file],
                vec!["ls", addr],
                vec!["get", addr, "f", "-o", &out],
            ]
        })
        .map(|args| args.into_iter().map(str::to_string).collect())
        .collect();
    // The echo port's cases each wait out the banner: all at once.
    let runs: Vec<_> = cases
        .into_iter()
        .map(|args| {
            let fx_key = fx.s("key");
            thread::spawn(move || {
                let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
                all.extend(["--key", &fx_key]);
                let (st, _, err) = run_with_input(&all, b"", LIMIT);
                (args, st.success(), err)
            })
        })
        .collect();
    for run in runs {
        let (args, ok, err) = run.join().unwrap();
        assert!(!ok, "{args:?} succeeded");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {err}");
        let want = if args[1] == chat {
            format!(
                "taojie: error: {chat} answered, but not as a taojie files service (it sent \
                 `*** welcome"
            )
        } else {
            format!(
                "taojie: error: {echo} accepted the connection but sent no taojie banner \
                 within 3 s: is it the right port?"
            )
        };
        assert!(lines[0].starts_with(&want), "{args:?}: {err}");
    }
}

#[test]
fn no_key_a_file_that_is_no_key_and_keygen_over_a_key_say_so_once() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    // No key given, and no taojie key of one's own: the same words as exec's, no flag blamed.
    let (code, _, err) = run_in(&fx.p("nodata"), &["ls", &addr]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        format!("taojie: error: {addr}: no key: give --key FILE (the server's shared key)")
    );
    let (code, _, err) = run_in(&fx.p("nodata"), &["exec", &addr, "--", "true"]);
    assert_eq!(code, Some(255), "{err}");
    assert!(
        err.starts_with("taojie: error: no key: give --key FILE (the server's shared key) or"),
        "{err}"
    );
    // A key file of garbage is refused when read, not later as a wrong key.
    std::fs::write(fx.p("garbage"), "garbage\n").unwrap();
    let (code, _, err) = run_in(&fx.p("nodata"), &["ls", &addr, "--key", &fx.s("garbage")]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("key file") && err.contains("7 bytes is too short for a shared key"),
        "{err}"
    );
    assert!(!err.contains("wrong key"), "{err}");
    // keygen over an existing file: one sentence, no OS error after it.
    let key = fx.s("key");
    let before = std::fs::read(&key).unwrap();
    let (code, _, err) = run_in(&fx.p("nodata"), &["keygen", &key]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!("taojie: error: {key} already exists; not overwriting it")
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn a_link_is_stored_under_the_name_given() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    random_file(&fx.p("src/big.bin"), 100_000, 5);
    std::os::unix::fs::symlink("big.bin", fx.p("src/link.bin")).unwrap();
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/link.bin")]);
    assert!(ok, "{err}");
    // A small file's summary has a rate, in the bar's units (KiB/s, MiB/s), never 0.0 MB/s.
    let summary = err.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("put: 1 file verified (BLAKE3), 97.66 KiB in "),
        "{err}"
    );
    let rate = summary.rsplit('(').next().unwrap();
    assert!(
        rate.ends_with("iB/s)") || rate.ends_with(" B/s)"),
        "{summary}"
    );
    assert!(
        !rate.starts_with("0 ") && !err.contains("MB/s"),
        "{summary}"
    );
    assert!(same(&fx.p("src/big.bin"), &fx.p("root/link.bin")));
    assert!(
        !fx.p("root/big.bin").exists(),
        "stored under the target's name"
    );
}

#[test]
fn a_file_already_there_is_up_to_date_and_another_is_not_replaced() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    random_file(&fx.p("src/f"), 5 << 20, 21);
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/f")]);
    assert!(ok, "{err}");
    // The same again: up to date, exit 0, nothing sent.
    let proxy = Proxy::start(&addr, None);
    let (ok, out, err) = fx.run(&["put", &proxy.addr, &fx.s("src/f"), "--json"]);
    assert!(ok, "{err}");
    let report = json(&out);
    assert_eq!(report["files"][0]["status"], "up_to_date", "{out}");
    assert!(
        proxy.bytes_up() < 64 << 10,
        "{} bytes sent",
        proxy.bytes_up()
    );
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/f")]);
    assert!(ok && err.contains("1 file already up to date"), "{err}");
    // Another file of the same size under that name: not replaced.
    std::fs::create_dir(fx.p("src/other")).unwrap();
    random_file(&fx.p("src/other/f"), 5 << 20, 22);
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/other/f")]);
    assert!(!ok);
    assert!(
        err.contains("already exists with other content") && err.contains("--overwrite"),
        "{err}"
    );
    // The refusal is the whole story: no transfer summary after it.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(same(&fx.p("src/f"), &fx.p("root/f")));
    // And the same both ways for get.
    let (ok, _, err) = fx.run(&["get", &addr, "f", "-o", &fx.s("out")]);
    assert!(ok, "{err}");
    let (ok, _, err) = fx.run(&["get", &addr, "f", "-o", &fx.s("out")]);
    assert!(ok && err.contains("1 file already up to date"), "{err}");
}

#[test]
fn ls_of_a_file_shows_it_and_get_into_a_file_says_what_o_takes() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    std::fs::create_dir(fx.p("root/d")).unwrap();
    std::fs::write(fx.p("root/d/big.bin"), vec![1u8; 3000]).unwrap();
    let (ok, out, err) = fx.run(&["ls", &addr, "d/big.bin"]);
    assert!(ok, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        (words[0], words[1], words[2], *words.last().unwrap()),
        ("file", "2.93", "KiB", "d/big.bin"),
        "{out}"
    );
    let (ok, _, err) = fx.run(&["ls", &addr, "d/big.bin/x"]);
    assert!(
        !ok && err.contains("not a directory on the server"),
        "{err}"
    );
    std::fs::write(fx.p("out/F"), b"keep").unwrap();
    let (ok, _, err) = fx.run(&["get", &addr, "d/big.bin", "-o", &fx.s("out/F")]);
    assert!(!ok);
    assert!(
        err.contains("that is a file; -o names the directory to download into"),
        "{err}"
    );
    assert_eq!(std::fs::read(fx.p("out/F")).unwrap(), b"keep");
}

#[test]
fn empty_directories_are_made_both_ways() {
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    std::fs::create_dir_all(fx.p("src/tree/empty/deeper")).unwrap();
    std::fs::create_dir_all(fx.p("src/tree/full")).unwrap();
    std::fs::write(fx.p("src/tree/full/x"), b"x").unwrap();
    std::fs::create_dir(fx.p("src/nothing")).unwrap();
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/tree"), &fx.s("src/nothing")]);
    assert!(ok, "{err}");
    assert!(err.contains("2 empty directories made"), "{err}");
    assert!(fx.p("root/tree/empty/deeper").is_dir());
    assert!(fx.p("root/nothing").is_dir());
    let (ok, _, err) = fx.run(&["get", &addr, "tree", "nothing", "-o", &fx.s("out")]);
    assert!(ok, "{err}");
    assert!(fx.p("out/tree/empty/deeper").is_dir());
    assert!(fx.p("out/nothing").is_dir());
    assert!(same(&fx.p("src/tree/full/x"), &fx.p("out/tree/full/x")));
}

#[test]
fn a_missing_local_file_and_a_name_that_is_not_utf8_are_told_apart() {
    use std::os::unix::ffi::OsStrExt;
    let fx = Fixture::new();
    let srv = fx.serve(&[]);
    let addr = srv.addr("files", "tcp");
    let (ok, _, err) = fx.run(&["put", &addr, &fx.s("src/nosuch")]);
    assert!(!ok);
    assert!(
        err.contains("nosuch: no such file or directory") && !err.contains("UTF-8"),
        "{err}"
    );
    let bad = fx.p("src").join(std::ffi::OsStr::from_bytes(b"bad\xff"));
    std::fs::write(&bad, b"x").unwrap();
    let key = fx.s("key");
    let args = [
        "put".as_ref(),
        addr.as_ref(),
        bad.as_os_str(),
        "--key".as_ref(),
        key.as_ref(),
    ];
    let (code, _, err) = run_in::<&std::ffi::OsStr>(&fx.p("nodata"), &args);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("its name is not UTF-8") && !err.contains("no such file"),
        "{err}"
    );
}
