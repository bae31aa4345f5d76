//! The shipped config/taojie.toml: it passes `--check-config`, every key it shows commented
//! out is a real key of its section, and it starts every service (its state directory moved
//! to a temporary one), also as a user of its own with no HOME, as systemd's DynamicUser runs it.
use super::common::need;
use super::{run, write};

fn example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/taojie.toml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_example_config_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    // Its state directory moved into a temporary one, so that a real /var/lib/taojie on the
    // test machine cannot change the answer.
    let text = example().replace("/var/lib/taojie", &dir.path().display().to_string());
    let path = write(dir.path(), "taojie.toml", &text);
    let path = path.to_str().unwrap();
    let (ok, out, err) = run(&["serve", "--check-config", path]);
    assert!(ok, "stderr: {err}");
    assert_eq!(
        out.trim(),
        format!("{path}: ok (echo, time, exec, files, chat)")
    );
    // Loopback only, as shipped.
    for line in text
        .lines()
        .filter(|l| l.contains(":90") || l.contains(":91"))
    {
        assert!(line.contains("127.0.0.1"), "not loopback: {line}");
    }
}

#[test]
fn every_commented_key_in_the_example_is_a_real_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = example();
    let lines: Vec<&str> = text.lines().collect();
    let mut tried = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = rest.split_once(" = ") else {
            continue;
        };
        if !key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            continue;
        }
        let mut one = lines.clone();
        one[i] = rest;
        let path = write(dir.path(), "one.toml", &one.join("\n"));
        let (_, _, err) = run(&["serve", "--check-config", path.to_str().unwrap()]);
        assert!(
            !err.contains("unknown key") && !err.contains("expected"),
            "`{key}` (line {}): {err}",
            i + 1
        );
        tried += 1;
    }
    assert!(tried > 40, "only {tried} commented keys found");
}

#[test]
fn the_example_config_starts_every_service_and_its_key_works() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // As under systemd's StateDirectory=taojie: the directory exists, empty. The ports move to
    // 0 so the test runs beside anything on the shipped ones.
    std::fs::create_dir(&state).unwrap();
    let mut text = example().replace("/var/lib/taojie", &state.display().to_string());
    for port in ["9007", "9013", "9123", "9512", "9021", "9006", "9080"] {
        text = text.replace(&format!("127.0.0.1:{port}\""), "127.0.0.1:0\"");
    }
    let path = write(dir.path(), "taojie.toml", &text);
    let server = super::serve(&["serve", "--config", path.to_str().unwrap()], 10);
    for (service, proto) in [
        ("echo", "tcp"),
        ("echo", "udp"),
        ("time", "udp"),
        ("daytime", "tcp"),
        ("sntp", "udp"),
        ("exec", "tcp"),
        ("files", "tcp"),
        ("chat", "tcp"),
        ("chat", "udp"),
        ("chat-web", "tcp"),
    ] {
        server.addr(service, proto);
    }
    // The key created at the first start lets a client run a command.
    let key = state.join("key");
    let (ok, out, err) = run(&[
        "exec",
        &server.addr("exec", "tcp"),
        "--key",
        key.to_str().unwrap(),
        "--",
        "echo",
        "configured",
    ]);
    assert!(ok, "exec failed: {err}");
    assert_eq!(out, "configured\n");
    assert!(state.join("files").is_dir());
}

#[test]
fn the_example_config_runs_as_a_user_of_its_own_with_no_home() {
    use std::os::unix::fs::PermissionsExt;
    // systemd's DynamicUser=yes: a uid of its own, no HOME, only the state directory
    // writable. Switching users needs root, as in CI.
    if !need::root() || !need::tool("setpriv") {
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut text = example().replace("/var/lib/taojie", &state.display().to_string());
    for port in ["9007", "9013", "9123", "9512", "9021", "9006", "9080"] {
        text = text.replace(&format!("127.0.0.1:{port}\""), "127.0.0.1:0\"");
    }
    let path = write(dir.path(), "taojie.toml", &text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A copy of the binary the user can reach (the checkout may be under a private home).
    let bin = dir.path().join("taojie");
    std::fs::copy(super::common::bin(), &bin).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/");
    let server = super::Served::spawn_capturing(cmd, 10);
    server.addr("exec", "tcp");
    let key = std::fs::metadata(state.join("key")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(key.uid(), NOBODY, "the key belongs to the service's user");
    assert_eq!(key.mode() & 0o777, 0o600);
}
