//! `[[forward]]` tables in `serve --config`: several forwards in one process, each announced
//! and counted under its own name; mistakes are one line naming the file's line.
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::{OutputWithin, Server, bin};
use crate::{WAIT, reverser};

/// Sends `data` through `addr` (to a reverser) and checks it comes back reversed.
fn through(addr: &str, data: &[u8]) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    let mut want = data.to_vec();
    want.reverse();
    assert_eq!(back, want);
}

#[test]
fn several_forwards_from_one_file_each_counted_under_its_name() {
    let target = reverser();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taojie.toml");
    std::fs::write(
        &file,
        format!(
            "[[forward]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget = \"{target}\"\n\
             max-conns = 10\n\n[[forward]]\nlisten = \"127.0.0.1:0\"\ntarget = \"{target}\"\n"
        ),
    )
    .unwrap();
    let check = crate::common::command(bin())
        .args(["serve", "--check-config", file.to_str().unwrap()])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok (forward-web, forward-2)"));
    let mut cmd = crate::common::command(bin());
    cmd.args([
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut served = Server::spawn_capturing(cmd, 3);
    let (web, second) = (
        served.addr("forward-web", "tcp"),
        served.addr("forward-2", "tcp"),
    );
    through(&web, b"first");
    through(&web, b"second one");
    through(&second, b"third");
    for _ in 0..3 {
        served.wait_stderr("relayed");
    }
    let mut scrape = TcpStream::connect(served.addr("metrics", "tcp")).unwrap();
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    scrape.set_read_timeout(Some(WAIT)).unwrap();
    let mut page = String::new();
    scrape.read_to_string(&mut page).unwrap();
    let value = |series: &str| -> String {
        page.lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {page}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        value("taojie_connections_accepted_total{service=\"forward-web\"} "),
        "2"
    );
    assert_eq!(
        value("taojie_connections_accepted_total{service=\"forward-2\"} "),
        "1"
    );
    assert_eq!(
        value("taojie_received_bytes_total{service=\"forward-web\"} "),
        "15"
    );
}

#[test]
fn a_mistake_in_a_forward_table_is_one_line_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[forward]]\nlisten = \"127.0.0.1:0\"\n",
            "line 1: [[forward]] needs `target`",
        ),
        (
            "[[forward]]\nlisten = \"127.0.0.1:0\"\ntarget = \"127.0.0.1:9\"\nto-tlss = true\n",
            "line 4: unknown key `to-tlss` in [[forward]]",
        ),
        (
            "[forward]\nlisten = \"127.0.0.1:0\"\n",
            "line 1: forwards are [[forward]] tables",
        ),
        (
            "[[forward]]\nlisten = \"udp:127.0.0.1:0\"\ntarget = \"nowhere\"\n",
            "expected HOST:PORT",
        ),
    ];
    for (text, want) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = crate::common::command(bin())
            .args(["serve", "--check-config", file.to_str().unwrap()])
            .output_within(crate::WAIT)
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{want:?}: {err}");
    }
}

#[test]
fn the_forward_tables_shown_in_the_example_config_pass_the_check() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/taojie.toml"))
            .unwrap();
    // The example's forwards are commented out (`#   key = value`): uncommented, they are a
    // file of their own, its key path moved to a key made here.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tunnel.key");
    let made = crate::common::command(bin())
        .args(["keygen", key.to_str().unwrap()])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(made.status.success());
    let tables: String = example
        .lines()
        .filter_map(|l| l.strip_prefix("#   ").or((l == "#").then_some("")))
        .skip_while(|l| *l != "[[forward]]")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(tables.matches("[[forward]]").count(), 2, "{tables}");
    let tables = tables.replace("/var/lib/taojie/tunnel.key", key.to_str().unwrap());
    let file = dir.path().join("forwards.toml");
    std::fs::write(&file, &tables).unwrap();
    let check = crate::common::command(bin())
        .args(["serve", "--check-config", file.to_str().unwrap()])
        .output_within(crate::WAIT)
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
    );
    assert!(check.status.success(), "{tables}\n{err}");
    assert!(out.contains("ok (forward-pg, forward-docker)"), "{out}");
}
