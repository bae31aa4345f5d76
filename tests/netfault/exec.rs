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
