//! `taojie serve proxy` (the real binary) with real clients on loopback: curl in its three
//! proxy modes, with and without credentials, over IPv4 and IPv6, to a real nginx; Python's
//! PySocks; the rules' refusals (the target sees nothing); hostile and junk requests; and
//! `taojie connect --proxy` through taojie's proxy and through microsocks, dante and tinyproxy.
//!
//! `clients.rs` holds curl, PySocks, `taojie http` and the metrics; `caps.rs` the per-user
//! cap; `forward.rs` plain HTTP requests (no CONNECT) and a relay cut off by the idle
//! timeout; `pipeline.rs` a second plain request on one connection (pipelined or kept
//! alive); `rules.rs` the refusals and the config file; `hostile.rs` bad requests and junk
//! connections; `peers.rs` taojie's clients (connect, exec, put, get, ls, forward, chat)
//! through taojie's proxy and others, and ncat; `dante.rs` taojie's client through dante;
//! `udp6.rs` UDP ASSOCIATE over IPv6; `ssh.rs` ssh with taojie as its ProxyCommand. A test
//! whose peer is missing is skipped and says so, and fails under CI (`common::need`).
mod caps;
mod clients;
#[path = "../common/mod.rs"]
mod common;
mod dante;
mod forward;
mod hostile;
#[path = "../http/nginx.rs"]
mod nginx;
mod peers;
mod pipeline;
mod rules;
mod ssh;
mod udp6;

use std::process::Command;
use std::time::Duration;

use common::{Server, run_program};

/// The body nginx serves at `/hello.txt`.
pub const HELLO: &str = "hello through the proxy\n";

/// nginx on 127.0.0.1 and [::1], serving [`HELLO`].
pub fn nginx() -> nginx::Nginx {
    let n = nginx::Nginx::start();
    std::fs::write(n.www().join("hello.txt"), HELLO).unwrap();
    n
}

/// The rules that let a proxy reach the test's nginx, which listens on loopback (denied by
/// default): its IPv4 and IPv6 addresses and the name `localhost`.
pub const ALLOW_NGINX: [&str; 6] = [
    "--allow",
    "127.0.0.1",
    "--allow",
    "[::1]",
    "--allow",
    "localhost",
];

/// `/hello.txt` on `n` by its IPv4 address, its IPv6 address and the name `localhost`.
pub fn hello_urls(n: &nginx::Nginx) -> [String; 3] {
    [
        n.url("/hello.txt"),
        n.url6("/hello.txt"),
        format!("http://localhost:{}/hello.txt", n.port),
    ]
}

/// `taojie serve proxy --listen LISTEN ARGS...`, its stderr captured; returns it and its
/// address.
pub fn proxy(listen: &str, args: &[&str]) -> (Server, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["serve", "proxy", "--listen", listen]).args(args);
    let s = Server::spawn_capturing(cmd, 1);
    let addr = s.addr("proxy", "tcp");
    (s, addr)
}

/// A users file with `ann` (password `s3cret pass`), written by `taojie proxy-user add`.
pub fn users_file(dir: &std::path::Path) -> String {
    let path = dir.join("users");
    let p = path.to_str().unwrap().to_string();
    let (status, _, err) = common::run_with_input(
        &["proxy-user", "add", &p, "ann"],
        b"s3cret pass\n",
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert!(err.contains("added ann"), "{err}");
    p
}

/// What one curl run did.
pub struct Curl {
    /// curl's exit code.
    pub code: i32,
    pub body: String,
    pub stderr: String,
}

/// `curl -sS --max-time 10 ARGS... URL`.
pub fn curl(args: &[&str], url: &str) -> Curl {
    let mut all = vec!["-sS", "--max-time", "10"];
    all.extend_from_slice(args);
    all.push(url);
    let (status, out, err) = run_program("curl", &all, b"", Duration::from_secs(20));
    Curl {
        code: status.code().unwrap_or(-1),
        body: String::from_utf8_lossy(&out).into_owned(),
        stderr: err,
    }
}
