//! ssh with `taojie connect --proxy` as its ProxyCommand, to an sshd the test runs on a free
//! loopback port (its host key, the user's key and authorized_keys made in a tempdir).
use std::process::{Command, Stdio};

use crate::common::bin;
use crate::common::need;
use crate::nginx::free_port;
use crate::peers::{Peer, start_peer};
use crate::proxy;

/// OpenSSH's sshd on `port`, for the current user with `user_key`, all files in `dir`.
fn sshd(dir: &std::path::Path, port: u16) -> Option<Peer> {
    if !need::tool("/usr/sbin/sshd") || !need::tool("ssh") {
        return None;
    }
    let keygen = |name: &str| {
        let f = dir.join(name);
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&f)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen");
    };
    keygen("host_key");
    keygen("user_key");
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nPidFile none\nStrictModes no\n"
        ),
    )
    .unwrap();
    // The privilege-separation directory sshd insists on.
    let _ = std::fs::create_dir_all("/run/sshd");
    let config = dir.join("sshd_config");
    Some(start_peer(
        "/usr/sbin/sshd",
        &["-D", "-e", "-f", config.to_str().unwrap()],
        port,
    ))
}

#[test]
fn ssh_reaches_sshd_with_taojie_connect_as_its_proxy_command() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(_sshd) = sshd(dir.path(), port) else {
        return;
    };
    let (mut p, addr) = proxy("127.0.0.1:0", &["--allow", "localhost"]);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let proxy_command = format!("{} connect --proxy socks5h://{addr} %h:%p", bin());
    let key = dir.path().join("user_key");
    let out = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ])
        .arg(&key)
        .args([
            "-o",
            &format!("ProxyCommand={proxy_command}"),
            "-p",
            &port.to_string(),
        ])
        .arg(format!("{}@localhost", user.trim()))
        .args(["echo", "over ssh through the proxy"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ssh: {err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "over ssh through the proxy\n"
    );
    p.wait_stderr(&format!("target=localhost:{port} "));
}
