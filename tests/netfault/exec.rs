//! `taojie exec` over a bad link: the output arrives whole and in order, or the client ends
//! with one line saying the connection broke; the server's command does not outlive it.
use std::time::Duration;

use crate::Net;

const LIMIT: Duration = Duration::from_secs(60);

fn seq(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn output_arrives_whole_and_in_order_over_loss_and_a_rate_limit() {
    let Some(net) = Net::new() else { return };
    let served = net.serve("exec", &[]);
    net.link.lose(2);
    net.link.limit("40mbit");
    let key = net.key();
    let (status, out, err) = net.run(
        &[
            "exec",
            &served.addr,
            "--key",
            &key,
            "-n",
            "--",
            "seq",
            "1",
            "200000",
        ],
        LIMIT,
    );
    assert!(status.success(), "exec failed: {err}");
    assert!(
        out == seq(200_000).as_bytes(),
        "output of seq 1 200000 differs ({} bytes)",
        out.len()
    );
    served.assert_no_leaks(Duration::from_secs(20));
}

#[test]
fn a_reset_ends_the_client_with_one_clear_line_and_the_command_with_it() {
    let Some(net) = Net::new() else { return };
    let served = net.serve("exec", &[]);
    net.link.limit("20mbit");
    let key = net.key();
    // About 20 MB: several seconds on this link, so the reset lands in the middle.
    let mut client = net.spawn(&[
        "exec",
        &served.addr,
        "--key",
        &key,
        "-n",
        "--",
        "seq",
        "1",
        "3000000",
    ]);
    client.wait_stdout(1 << 20, Duration::from_secs(30));
    net.link.reset(served.port());
    std::thread::sleep(Duration::from_millis(500));
    net.link.stop_resets();
    let (status, out, err) = client.finish(LIMIT);
    assert!(!status.success(), "exec should fail after a reset");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err:?}");
    assert!(
        lines[0].contains(&served.addr) && lines[0].contains("reset"),
        "{err}"
    );
    // What did arrive is the command's output, in order, without a gap.
    let all = seq(3_000_000);
    let cut = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    assert!(
        all.as_bytes().starts_with(&out[..cut]),
        "the output before the reset is not a prefix of seq's"
    );
    served.assert_no_leaks(Duration::from_secs(30));
}

/// Whether a process whose command line matches `pattern` (pgrep -f) runs.
fn running(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A server that vanishes (it answers nothing any more, as when its machine goes off) while
/// its command prints nothing: the client's TCP keepalive notices, and it ends with
/// one error line instead of waiting forever; the server ends the command once its own
/// keepalive gives up on the client. (The client's keepalive gives up after about 25 s,
/// the server's after 90 s; the bounds here only end a hang.)
#[test]
fn a_server_that_vanishes_during_a_quiet_command_is_noticed() {
    let Some(net) = Net::new() else { return };
    let served = net.serve("exec", &[]);
    let key = net.key();
    let secs = format!("600.{}", std::process::id());
    let mut client = net.spawn(&["exec", &served.addr, "--key", &key, "--", "sleep", &secs]);
    // Its input ends now, while the server still acknowledges the end: from then on nothing
    // is in flight and only keepalive can notice (data unacknowledged after the server is
    // gone is retransmitted for tcp_retries2's quarter of an hour instead).
    client.close_stdin();
    let pattern = format!("^sleep {secs}");
    let deadline = std::time::Instant::now() + LIMIT;
    while !running(&pattern) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The command running does not mean nothing is in flight: the server's `started`, or the
    // client's end of input after it, may still wait for its acknowledgement, and data
    // unacknowledged when the link goes is retransmitted for a quarter of an hour instead of
    // being probed by keepalive (this failed two runs in a row on an idle machine). So the
    // link goes once both ends have had everything they sent acknowledged, for half a second.
    wait_settled(&net, &served.addr);
    net.link.vanish();
    let (status, out, err) = client.finish(Duration::from_secs(180));
    assert!(!status.success(), "exec succeeded with its server gone");
    assert!(out.is_empty(), "{out:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err:?}");
    assert!(lines[0].contains(&served.addr), "{err}");
    // The server, on its side, notices the client it can no longer reach by its own
    // keepalive (60 s + 3 x 10 s) and ends the command.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while running(&pattern) {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep {secs} outlived its unreachable client"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(served);
}

/// Waits until the connection to `server` has nothing unacknowledged on either end (`ss`'s
/// Send-Q is 0 in both namespaces) in five looks 100 ms apart.
fn wait_settled(net: &crate::Net, server: &str) {
    let send_q = |ns: &str, filter: &str| -> Option<u64> {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "ss",
                "-tnH",
                "state",
                "established",
                filter,
                server,
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text.lines().next()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let deadline = std::time::Instant::now() + LIMIT;
    let mut quiet = 0;
    while quiet < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection never settled (something stayed unacknowledged)"
        );
        let settled = send_q(&net.link.client_ns, "dst") == Some(0)
            && send_q(&net.link.server_ns, "src") == Some(0);
        quiet = if settled { quiet + 1 } else { 0 };
        std::thread::sleep(Duration::from_millis(100));
    }
}
