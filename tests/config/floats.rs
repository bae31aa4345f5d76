//! Float limits out of range (non-finite, negative, past 10^9 seconds): refused when parsed,
//! with the range, as flags and as keys of `serve --config`, at start, in `--check-config` and
//! on SIGHUP; never a panic.
use super::{run, serve, write};

/// `taojie ARGS` that must be refused, and the range its message must name.
const FLAGS: &[(&[&str], &str)] = &[
    (
        &[
            "serve",
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "1e20",
        ],
        "from 0 to 1000000000",
    ),
    (
        &["serve", "--any-port", "--grace", "inf"],
        "from 0 to 1000000000",
    ),
    (
        &["serve", "exec", "--insecure-no-auth", "--timeout", "inf"],
        "above 0, at most 1000000000",
    ),
    (
        &[
            "serve",
            "exec",
            "--insecure-no-auth",
            "--handshake-timeout",
            "nan",
        ],
        "above 0, at most 1000000000",
    ),
    (
        &["serve", "chat", "--max-lag", "nan"],
        "above 0, at most 1000000000",
    ),
    (
        &["serve", "chat", "--rate", "inf"],
        "from 0 to 1000000000 a second",
    ),
    (
        &["serve", "chat", "--web-ping", "1e300"],
        "above 0, at most 1000000000",
    ),
    (&["serve", "time", "--grace", "NaN"], "from 0 to 1000000000"),
    (
        &["connect", "127.0.0.1:1", "--wait", "1e20"],
        "from 0 to 1000000000",
    ),
    (
        &["listen", "127.0.0.1:0", "--udp", "--linger", "nan"],
        "from 0 to 1000000000",
    ),
    (
        &["http", "http://127.0.0.1:1/", "--timeout", "inf"],
        "above 0",
    ),
    (&["time", "127.0.0.1:1", "--timeout", "1e20"], "above 0"),
    (
        &[
            "msg",
            "who",
            "--bind",
            "127.77.9.1",
            "--broadcast",
            "127.77.9.9",
            "--wait",
            "nan",
        ],
        "from 0 to 1000000000",
    ),
    (&["bench", "127.0.0.1:1", "--seconds", "inf"], "above 0"),
    (
        &[
            "exec",
            "127.0.0.1:1",
            "--connect-timeout",
            "inf",
            "--",
            "true",
        ],
        "above 0",
    ),
];

#[test]
fn out_of_range_float_flags_are_refused_with_the_range() {
    for (args, range) in FLAGS {
        let (ok, out, err) = run(args);
        assert!(!ok, "{args:?}: accepted");
        assert!(out.is_empty(), "{args:?}: stdout {out:?}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: invalid value") && first.contains(range),
            "{args:?}: {err:?}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// (section, key = value) that `--config` and `--check-config` must refuse naming the line.
const KEYS: &[(&str, &str, &str)] = &[
    ("echo", "idle-timeout = 1e20", "from 0 to 1000000000"),
    ("time", "grace = -1.5", "from 0 to 1000000000"),
    ("exec", "timeout = inf", "above 0"),
    ("exec", "handshake-timeout = nan", "above 0"),
    ("chat", "max-lag = nan", "above 0"),
    ("chat", "rate = +inf", "a second"),
    ("chat", "idle-timeout = 1e20", "from 0 to 1000000000"),
];

#[test]
fn out_of_range_float_keys_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    for (section, key, range) in KEYS {
        let extra = if *section == "exec" {
            "key = \"k\"\n"
        } else {
            ""
        };
        let text = format!("[{section}]\nlisten = \"127.0.0.1:0\"\n{extra}{key}\n");
        let line = 3 + extra.lines().count();
        let path = write(dir.path(), "floats.toml", &text);
        let path = path.to_str().unwrap();
        let name = key.split(' ').next().unwrap();
        for flag in ["--check-config", "--config"] {
            let (ok, out, err) = run(&["serve", flag, path]);
            assert!(!ok, "{key} ({flag}): accepted");
            assert!(out.is_empty(), "{key} ({flag}): stdout {out:?}");
            let want = format!("{path} line {line}: [{section}] {name}: bad value");
            assert!(
                err.lines().count() == 1 && err.contains(&want) && err.contains(range),
                "{key} ({flag}): {err:?} should hold {want:?} and {range:?}"
            );
        }
    }
}

#[test]
fn sighup_with_a_huge_idle_timeout_keeps_the_old_one_and_the_next_sighup_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[echo]\nlisten = \"127.0.0.1:0\"\nidle-timeout = 300\n";
    let config = write(dir.path(), "taojie.toml", text);
    let mut server = serve(&["serve", "--config", config.to_str().unwrap()], 1);

    write(
        dir.path(),
        "taojie.toml",
        &text.replace("idle-timeout = 300", "idle-timeout = 1e20"),
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("kept the configuration in force");
    assert!(
        line.contains("line 3: [echo] idle-timeout: bad value `1e20`")
            && line.contains("from 0 to 1000000000"),
        "{line}"
    );

    // The reload task is alive: a good file is applied on the next SIGHUP.
    write(
        dir.path(),
        "taojie.toml",
        &text.replace("idle-timeout = 300", "idle-timeout = 60"),
    );
    server.signal(libc::SIGHUP);
    let line = server.wait_stderr("re-read");
    assert!(line.contains("applied [echo] idle-timeout = 60"), "{line}");
    assert!(
        !server.stderr.iter().any(|l| l.contains("panicked")),
        "{:?}",
        server.stderr
    );
}
