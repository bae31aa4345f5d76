//! Commands that leave their process group (`setsid -f`, as a daemon does) and so escaped
//! the group kill: they must not outlive the command's end, its `--timeout`, its client, or
//! the seed's protocol either.
use std::process::{Command, Stdio};

use super::{Fixture, exec, exec_command, running, unique_sleep, wait_running};

/// Kills (by PID) whatever matches `pattern` still: ours, left by a failing run.
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pattern in &self.0 {
            let out = Command::new("pgrep").args(["-f", pattern]).output();
            for pid in out
                .map(|o| o.stdout)
                .unwrap_or_default()
                .split(|&b| b == b'\n')
            {
                if let Ok(pid) = std::str::from_utf8(pid).unwrap_or("").parse::<i32>() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
    }
}

#[test]
fn what_leaves_the_process_group_dies_with_the_command() {
    let fx = Fixture::new();
    let server = fx.server(&["--timeout", "3"]);
    let (addr, key) = (server.addr("exec", "tcp"), fx.key());
    let k = ["--key", key.as_str()];
    let secs: Vec<String> = (0..6).map(|_| unique_sleep()).collect();
    let patterns: Vec<String> = secs.iter().map(|s| format!("^sleep {s}")).collect();
    let _cleanup = Leftovers(patterns.clone());
    let quiet = ">/dev/null 2>&1 </dev/null";

    // A daemon that keeps the output open: the command is over when its leader is, and the
    // daemon with it.
    let (code, _, err) = exec(&addr, &k, &["setsid", "-f", "sleep", &secs[0]], b"");
    assert!(
        wait_running(&patterns[0], false),
        "setsid -f sleep outlived its command (exit {code}, {err})"
    );

    // A daemon that closed its output: the command ends at once, the daemon too.
    let script = format!("setsid -f sleep {} {quiet}; echo started", secs[1]);
    let (code, out, err) = exec(&addr, &k, &["sh", "-c", &script], b"");
    assert_eq!((code, out.as_slice()), (0, &b"started\n"[..]), "{err}");
    assert!(
        wait_running(&patterns[1], false),
        "a detached daemon outlived its command"
    );

    // Past --timeout: the command is killed (124), and what it detached.
    let script = format!("setsid -f sleep {} {quiet}; sleep {}", secs[2], secs[3]);
    let (code, _, err) = exec(&addr, &k, &["sh", "-c", &script], b"");
    assert_eq!(code, 124, "{err}");
    assert!(
        wait_running(&patterns[2], false),
        "a detached daemon outlived --timeout"
    );
    assert!(!running(&patterns[3]));

    // A client that goes away takes the command and its daemon with it.
    let script = format!("setsid -f sleep {} {quiet}; sleep {}", secs[4], secs[5]);
    let mut client = exec_command(&addr, &key, &["sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_running(&patterns[5], true),
        "the command never started"
    );
    assert!(running(&patterns[4]), "the daemon never started");
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(
        wait_running(&patterns[4], false),
        "a detached daemon outlived its client"
    );
    assert!(!running(&patterns[5]));
}

#[test]
fn the_seeds_protocol_kills_what_a_command_detached_too() {
    if !crate::common::need::python("noise") {
        return;
    }
    let fx = Fixture::new();
    let server = fx.server(&[]);
    let addr = server.addr("exec-classic", "tcp");
    let secs = unique_sleep();
    let pattern = format!("^sleep {secs}");
    let _cleanup = Leftovers(vec![pattern.clone()]);
    let command = format!("setsid -f sleep {secs} >/dev/null 2>&1 </dev/null; echo started");
    let report = fx.raw(&addr, "classic", &[&command]);
    assert_eq!(report["answers"][0]["head"], "started\n", "{report}");
    assert!(
        wait_running(&pattern, false),
        "a detached daemon outlived its classic command"
    );
}
