//! Destinations the rules refuse: loopback by default, a denied CIDR, a denied port. Each
//! gets its protocol's refusal (SOCKS reply 2, HTTP 403) and the target sees nothing.
use crate::{curl, nginx, proxy};

/// curl through `addr` to `url` by SOCKS5 and by CONNECT; both must be refused as denied.
fn assert_denied(addr: &str, url: &str) {
    let c = curl(&["--proxy", &format!("socks5://{addr}")], url);
    assert_eq!(c.code, 97, "socks5 to {url} not refused: {}", c.stderr);
    // curl names the reply code: 2 is "connection not allowed by ruleset".
    assert!(c.stderr.contains("(2)"), "{}", c.stderr);
    let c = curl(&["--proxy", &format!("socks5h://{addr}")], url);
    assert!(c.code == 97 && c.stderr.contains("(2)"), "{}", c.stderr);
    let c = curl(
        &[
            "-p",
            "--proxy",
            &format!("http://{addr}"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_connect}",
        ],
        url,
    );
    assert_eq!((c.code, c.body.as_str()), (56, "403"), "{}", c.stderr);
}

#[test]
fn loopback_is_denied_by_default_and_the_target_sees_nothing() {
    let n = nginx();
    let (mut server, addr) = proxy("127.0.0.1:0", &[]);
    for url in [
        n.url("/hello.txt"),
        n.url6("/hello.txt"),
        format!("http://localhost:{}/hello.txt", n.port),
        format!("http://127.9.9.9:{}/hello.txt", n.port),
    ] {
        assert_denied(&addr, &url);
    }
    let line = server.wait_stderr("destination denied");
    assert!(line.contains("loopback"), "{line}");
    assert!(n.access_log().is_empty(), "nginx saw: {}", n.access_log());
}

#[test]
fn a_denied_cidr_or_port_wins_when_it_comes_first() {
    let n = nginx();
    let port = n.port.to_string();
    // The deny comes first, so the allow after it never matches these.
    let (_a, cidr) = proxy(
        "127.0.0.1:0",
        &["--deny", "127.0.0.0/8", "--allow", "127.0.0.1"],
    );
    assert_denied(&cidr, &n.url("/hello.txt"));
    let (_b, ports) = proxy(
        "127.0.0.1:0",
        &[
            "--deny",
            &format!(":{port}"),
            "--allow",
            "127.0.0.1",
            "--allow",
            "[::1]",
        ],
    );
    assert_denied(&ports, &n.url("/hello.txt"));
    assert_denied(&ports, &n.url6("/hello.txt"));
    let (_c, names) = proxy("127.0.0.1:0", &["--deny", "*.test", "--allow", "*"]);
    let c = curl(
        &["--proxy", &format!("socks5h://{names}")],
        "http://db.internal.test/",
    );
    assert!(c.code == 97 && c.stderr.contains("(2)"), "{}", c.stderr);
    assert!(n.access_log().is_empty(), "nginx saw: {}", n.access_log());
    // In the other order the allow wins.
    let (_d, allowed) = proxy(
        "127.0.0.1:0",
        &["--allow", "127.0.0.1", "--deny", "127.0.0.0/8"],
    );
    let c = curl(
        &["--proxy", &format!("socks5://{allowed}")],
        &n.url("/hello.txt"),
    );
    assert_eq!((c.code, c.body.as_str()), (0, crate::HELLO), "{}", c.stderr);
}

#[test]
fn a_config_file_keeps_the_rules_in_order_and_refuses_to_guess_it() {
    let n = nginx();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taojie.toml");
    let port = n.port;
    std::fs::write(
        &file,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\nrule = [\"deny [::1]:{port}\", \"allow 127.0.0.1\", \"allow [::1]\"]\n"
        ),
    )
    .unwrap();
    let cmd = {
        let mut c = std::process::Command::new(crate::common::bin());
        c.args(["serve", "--config", file.to_str().unwrap()]);
        c
    };
    let server = crate::common::Server::spawn_capturing(cmd, 1);
    let addr = server.addr("proxy", "tcp");
    let c = curl(
        &["--proxy", &format!("socks5://{addr}")],
        &n.url("/hello.txt"),
    );
    assert_eq!((c.code, c.body.as_str()), (0, crate::HELLO), "{}", c.stderr);
    assert_denied(&addr, &n.url6("/hello.txt"));
    // allow and deny keys together: their order is lost, so the file is refused.
    std::fs::write(
        &file,
        "[proxy]\nallow = [\"127.0.0.1\"]\ndeny = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let (status, _, err) = crate::common::run_with_input(
        &["serve", "--check-config", file.to_str().unwrap()],
        b"",
        std::time::Duration::from_secs(10),
    );
    assert!(
        !status.success() && err.contains("line 3") && err.contains("rule = ["),
        "{err}"
    );
}
