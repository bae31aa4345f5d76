//! Bad files: one error line naming the file's line and a non-zero exit; `--check-config`
//! says ok or the same error, and binds nothing.
use std::net::TcpListener;

use super::{run, write};

/// (what is wrong, the file, the line the error must name, words the error must hold)
const BAD: &[(&str, &str, usize, &str)] = &[
    (
        "unknown key",
        "[echo]\nlisten = \"127.0.0.1:0\"\nfoo = 1\n",
        3,
        "unknown key `foo` in [echo]",
    ),
    (
        "snake_case key",
        "[echo]\n\nmax_conns = 3\n",
        3,
        "keys are spelt as the flags: `max-conns`",
    ),
    (
        "bad number",
        "[echo]\nlisten = \"127.0.0.1:0\"\n\nmax-conns = \"many\"\n",
        4,
        "max-conns: bad value `many`",
    ),
    (
        "value out of range",
        "[time]\nstratum = 99\n",
        2,
        "stratum: bad value `99`",
    ),
    (
        "switch given a string",
        "[echo]\nupper = \"yes\"\n",
        2,
        "upper: expected true or false",
    ),
    ("bad TOML", "[echo]\nlisten = \"127.0.0.1:0\n", 2, ""),
    (
        "bad metrics address",
        "metrics = \"nowhere\"\n\n[echo]\n",
        1,
        "metrics: bad value `nowhere`: expected HOST:PORT (e.g. 127.0.0.1:9007 or [::1]:9007); \
         nowhere has no port",
    ),
    (
        "metrics port out of range",
        "metrics = 99999\n[echo]\n",
        1,
        "metrics: bad value `99999`: expected HOST:PORT (e.g. 127.0.0.1:9007 or [::1]:9007); \
         99999 is not a port (1-65535)",
    ),
    (
        "listen port out of range",
        "[echo]\nlisten = \"127.0.0.1:99999\"\n",
        2,
        "[echo] listen: bad value `127.0.0.1:99999`: expected HOST:PORT (e.g. 127.0.0.1:9007 \
         or [::1]:9007); 99999 is not a port (1-65535)",
    ),
    (
        "a v6 address without brackets",
        "[files]\nroot = \"r\"\nkey = \"k\"\n\nclassic = \"::1\"\n",
        5,
        "[files] classic: bad value `::1`: expected HOST:PORT (e.g. 127.0.0.1:9007 or \
         [::1]:9007); ::1 reads as an IPv6 address without a port",
    ),
    (
        "a v6 address without a port",
        "[echo]\n[chat]\nweb = \"[::1]\"\n",
        3,
        "[chat] web: bad value `[::1]`: expected HOST:PORT (e.g. 127.0.0.1:9007 or \
         [::1]:9007); [::1] has no port",
    ),
    (
        "a name that does not resolve",
        "[echo]\nlisten = \"127.0.0.1:0\"\n[time]\nsntp = \"nosuch.invalid:123\"\n",
        4,
        "[time] sntp: nosuch.invalid:123: cannot resolve nosuch.invalid (",
    ),
    (
        "a metrics name that does not resolve",
        "\nmetrics = \"nosuch.invalid:9100\"\n[echo]\n",
        2,
        "metrics: nosuch.invalid:9100: cannot resolve nosuch.invalid (",
    ),
    (
        "unknown section",
        "[echo]\n[ftp]\nlisten = \"127.0.0.1:0\"\n",
        2,
        "unknown section [ftp]",
    ),
    (
        "conflicting keys",
        "[exec]\nkey = \"k\"\nshell = true\nallow = [\"ls\"]\n",
        4,
        "cannot be used with",
    ),
    (
        "bad log level",
        "log-level = \"loud\"\n[echo]\n",
        1,
        "`loud` is not a log level",
    ),
];

#[test]
fn a_bad_file_is_one_line_naming_the_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text, line, words) in BAD {
        let path = write(dir.path(), "bad.toml", text);
        let path = path.to_str().unwrap();
        for flag in ["--config", "--check-config"] {
            let (ok, out, err) = run(&["serve", flag, path]);
            assert!(!ok, "{what} ({flag}): exit status 0");
            assert!(out.is_empty(), "{what} ({flag}): stdout {out:?}");
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 1, "{what} ({flag}): stderr {err:?}");
            let prefix = format!("taojie: error: {path} line {line}: ");
            assert!(
                lines[0].starts_with(&prefix) && lines[0].contains(words),
                "{what} ({flag}): {:?} should start {prefix:?} and hold {words:?}",
                lines[0]
            );
        }
    }
}

#[test]
fn check_config_binds_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The test holds the port the file names, as a running server would: a check that
    // tried to bind it would fail. (Whether the port is free after the checker exited says
    // nothing: every socket closes at exit.)
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let key = dir.path().join("state/key");
    let good = format!(
        "[echo]\nlisten = \"127.0.0.1:{port}\"\n[exec]\nlisten = \"127.0.0.1:{port}\"\nkey = \"{}\"\n",
        key.display()
    );
    let path = write(dir.path(), "good.toml", &good);
    let path = path.to_str().unwrap();
    let (ok, out, err) = run(&["serve", "--check-config", path]);
    assert!(ok, "stderr: {err}");
    assert_eq!(out.trim(), format!("{path}: ok (echo, exec)"));
    assert!(err.contains("does not exist yet"), "{err}");
    assert!(!key.exists(), "--check-config must not create the key");

    let bad = write(dir.path(), "bad.toml", &format!("{good}nope = 1\n"));
    let (ok, _, err) = run(&["serve", "--check-config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("line 6: unknown key `nope` in [exec]"),
        "{err}"
    );
    drop(held);
}

#[test]
fn exec_without_any_key_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t.toml", "[exec]\nlisten = \"127.0.0.1:0\"\n");
    let (ok, _, err) = run(&["serve", "--check-config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 1: [exec] needs `key`"), "{err}");
}
