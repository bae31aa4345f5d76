//! Chat over a lossy link: a scripted client's lines reach another client whole and in order.
use std::time::Duration;

use crate::Net;

#[test]
fn chat_lines_stay_in_order_over_loss() {
    let Some(net) = Net::new() else { return };
    let served = net.serve("chat", &[]);
    net.link.lose(2);
    let key = net.key();
    let mut reader = net.spawn(&["chat", &served.addr, "--name", "reader", "--key", &key]);
    const N: usize = 500;
    let lines: String = (0..N).map(|i| format!("line {i}\n")).collect();
    // Wait until the reader is in, so no line is sent before it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&reader.stdout).contains("you are reader") {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never saw the writer join: {:?}",
            String::from_utf8_lossy(&reader.stdout)
        );
        reader.more_stdout(Duration::from_millis(200));
    }
    let mut writer = net.spawn(&["chat", &served.addr, "--name", "writer", "--key", &key]);
    writer.feed(lines.into_bytes());
    let last = format!("<writer> line {}", N - 1);
    while !String::from_utf8_lossy(&reader.stdout).contains(&last) {
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(20),
            "the last line never came"
        );
        reader.more_stdout(Duration::from_millis(200));
    }
    let text = String::from_utf8_lossy(&reader.stdout).to_string();
    let got: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("<writer> "))
        .collect();
    let want: Vec<String> = (0..N).map(|i| format!("<writer> line {i}")).collect();
    assert_eq!(got, want, "lines lost, doubled or out of order");
    let _ = writer.finish(Duration::from_secs(10));
    let _ = reader.finish(Duration::from_secs(10));
    served.assert_no_leaks(Duration::from_secs(20));
}
