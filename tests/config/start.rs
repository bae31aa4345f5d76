//! Several services from one file, keys and roots created, flags over the file.
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use super::{connect, echo, serve, write};

#[test]
fn one_file_starts_several_services_and_creates_their_key_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write(
        dir.path(),
        "taojie.toml",
        &format!(
            r#"
[echo]
listen = "127.0.0.1:0"
udp = "127.0.0.1:0"
upper = true

[time]
listen = "127.0.0.1:0"
tcp = "127.0.0.1:0"
sntp = "127.0.0.1:0"

[exec]
listen = "127.0.0.1:0"
key = "{state}/key"

[files]
listen = "127.0.0.1:0"
root = "{state}/files"
key = "{state}/key"

[chat]
listen = "127.0.0.1:0"
"#,
            state = state.display()
        ),
    );
    let server = serve(&["serve", "--config", config.to_str().unwrap()], 8);
    for (service, proto) in [
        ("echo", "tcp"),
        ("echo", "udp"),
        ("time", "udp"),
        ("daytime", "tcp"),
        ("sntp", "udp"),
        ("exec", "tcp"),
        ("files", "tcp"),
        ("chat", "tcp"),
    ] {
        assert!(server.addr(service, proto).starts_with("127.0.0.1:"));
    }
    // The file's `upper = true` reached echo.
    let mut s = connect(&server.addr("echo", "tcp"));
    assert_eq!(echo(&mut s, "hello"), "HELLO");
    // Daytime answers a line.
    let mut day = String::new();
    connect(&server.addr("daytime", "tcp"))
        .read_to_string(&mut day)
        .unwrap();
    assert!(day.trim().len() > 10, "daytime said {day:?}");
    // The shared key was created once, mode 600, and the files root, mode 700.
    let key = std::fs::metadata(state.join("key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let root = std::fs::metadata(state.join("files")).unwrap();
    assert!(root.is_dir());
    assert_eq!(root.permissions().mode() & 0o777, 0o700);
}

#[test]
fn flags_on_the_command_line_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // The file's address is taken: only the flag's lets echo start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write(
        dir.path(),
        "taojie.toml",
        &format!(
            "[echo]\nlisten = \"{}\"\nupper = false\n\n[time]\ntcp = \"127.0.0.1:0\"\n",
            taken.local_addr().unwrap()
        ),
    );
    let path = config.to_str().unwrap();
    let (ok, _, err) = super::run(&["serve", "--config", path]);
    assert!(!ok, "the taken address in the file must fail the start");
    assert!(err.contains("taojie: error:"), "{err}");

    // `serve --config F echo FLAGS`: echo alone, the flags over its section.
    let server = serve(
        &[
            "serve",
            "--config",
            path,
            "echo",
            "--listen",
            "127.0.0.1:0",
            "--upper",
        ],
        1,
    );
    assert_eq!(server.lines.len(), 1);
    let mut s = connect(&server.addr("echo", "tcp"));
    assert_eq!(echo(&mut s, "quiet"), "QUIET");
}

#[test]
fn a_limit_flag_given_to_serve_overrides_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "taojie.toml",
        "[echo]\nlisten = \"127.0.0.1:0\"\nmax-conns = 5\n",
    );
    let server = serve(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--max-conns",
            "1",
        ],
        1,
    );
    let addr = server.addr("echo", "tcp");
    let mut first = connect(&addr);
    assert_eq!(echo(&mut first, "one"), "one");
    let mut second = connect(&addr);
    assert!(
        super::closed_unanswered(&mut second),
        "--max-conns 1 on the command line must win over max-conns = 5 in the file"
    );
    assert_eq!(echo(&mut first, "still"), "still");
}

#[test]
fn the_file_can_serve_metrics_and_the_flag_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    // The file's metrics address is taken: only the flag's lets the endpoint start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let text =
        |metrics: &str| format!("metrics = \"{metrics}\"\n\n[echo]\nlisten = \"127.0.0.1:0\"\n");
    let config = write(dir.path(), "taojie.toml", &text("127.0.0.1:0"));
    let server = serve(&["serve", "--config", config.to_str().unwrap()], 2);
    let mut s = connect(&server.addr("echo", "tcp"));
    assert_eq!(echo(&mut s, "hello"), "hello");
    let mut http = connect(&server.addr("metrics", "tcp"));
    std::io::Write::write_all(
        &mut http,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut page = String::new();
    http.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("service=\"echo\""), "{page}");
    drop(server);

    let config = write(
        dir.path(),
        "taken.toml",
        &text(&taken.local_addr().unwrap().to_string()),
    );
    let flagged = serve(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
        2,
    );
    assert_ne!(
        flagged.addr("metrics", "tcp"),
        taken.local_addr().unwrap().to_string()
    );
}
