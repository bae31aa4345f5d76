//! The stream relay: integrity and half-close for 1,000 clients at once, descriptors back to
//! the baseline, a target that is down, and the metrics.
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::{WAIT, addr, clients_through, fds, fds_down_to, forward, reverser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_at_once_each_get_their_own_bytes_through_half_close() {
    let target = reverser();
    let mut fwd = forward(&["127.0.0.1:0", &target]);
    let pid = fwd.child.id();
    let baseline = fds(pid);
    // Sizes from 1 byte to about 200 KiB: more than one pipe's worth for many of them.
    clients_through(&addr(&fwd), 1000, |i| 1 + (i * 7919) % 200_000).await;
    // One log line per connection, each moved by splice (plain TCP on both sides).
    for _ in 0..1000 {
        let line = fwd.wait_stderr("relayed");
        assert!(line.contains("via=\"splice\""), "{line}");
        assert!(line.contains("end=\"closed\""), "{line}");
    }
    // Every socket and pipe is closed again.
    assert_eq!(fds_down_to(pid, baseline), baseline, "descriptors leaked");
}

#[test]
fn a_target_that_is_down_closes_the_client_at_once_with_one_log_line() {
    // Bound and never listening: refused, and no other test can take the port meanwhile.
    let (_down, target) = crate::common::ports::refused_tcp();
    let target = target.to_string();
    let mut fwd = forward(&["127.0.0.1:0", &target]);
    let pid = fwd.child.id();
    let baseline = fds(pid);
    let mut client = TcpStream::connect(addr(&fwd)).unwrap();
    let me = client.local_addr().unwrap().to_string();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    // Closed (EOF or a reset), not left waiting for the read timeout.
    match client.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes from a forward whose target is down"),
        Err(e) => assert_ne!(
            e.kind(),
            std::io::ErrorKind::WouldBlock,
            "no close in {WAIT:?}"
        ),
    }
    let line = fwd.wait_stderr("not relayed");
    assert!(line.contains(&me), "{line}");
    assert!(line.contains("Connection refused"), "{line}");
    assert!(line.contains(&target), "{line}");
    // Nothing of that connection is left open.
    assert_eq!(fds_down_to(pid, baseline), baseline, "descriptors leaked");
    // One line for that client: after a clean stop, no other line names it.
    assert!(fwd.terminate(WAIT).is_some_and(|s| s.success()));
    fwd.wait_stderr("shutting down");
    let about_it = fwd.stderr.iter().filter(|l| l.contains(&me)).count();
    assert_eq!(about_it, 1, "{:?}", fwd.stderr);
    drop(client);
}

#[test]
fn the_metrics_count_the_forwarded_connections_and_their_bytes() {
    let target = reverser();
    let mut cmd = crate::common::command(crate::bin());
    cmd.args([
        "forward",
        "127.0.0.1:0",
        &target,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut fwd = crate::Server::spawn_capturing(cmd, 2);
    let (fwd_addr, metrics) = (fwd.addr("forward", "tcp"), fwd.addr("metrics", "tcp"));
    for i in 0..3 {
        let mut c = TcpStream::connect(&fwd_addr).unwrap();
        c.write_all(&vec![i as u8; 1000]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 1000);
        fwd.wait_stderr("relayed");
    }
    let mut scrape = TcpStream::connect(&metrics).unwrap();
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    scrape.set_read_timeout(Some(WAIT)).unwrap();
    let mut page = String::new();
    scrape.read_to_string(&mut page).unwrap();
    let value = |name: &str| -> f64 {
        let key = format!("{name}{{service=\"forward\"}} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {key} in {page}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(value("taojie_connections_accepted_total"), 3.0);
    assert_eq!(value("taojie_received_bytes_total"), 3000.0);
    assert_eq!(value("taojie_sent_bytes_total"), 3000.0);
}

/// Sends `data` on `c`, ends its side, and reads everything back.
fn finish(mut c: TcpStream, data: &[u8]) -> Vec<u8> {
    c.write_all(data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    back
}

#[test]
fn max_conns_closes_a_client_past_the_cap_and_a_stop_lets_open_ones_finish() {
    let target = reverser();
    let mut fwd = forward(&["127.0.0.1:0", &target, "--max-conns", "1"]);
    let at = addr(&fwd);
    // The first client takes the one place (the listener's queue keeps the order).
    let first = TcpStream::connect(&at).unwrap();
    let mut second = TcpStream::connect(&at).unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 8];
    match second.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the client past the cap was not closed: {other:?}"),
    }
    // SIGTERM: no new client, while the open one still gets its whole answer, and then the
    // forward exits cleanly.
    fwd.signal(libc::SIGTERM);
    fwd.wait_stderr("shutting down");
    assert_eq!(finish(first, b"abc"), b"cba");
    let line = fwd.wait_stderr("relayed");
    assert!(line.contains("up=3 down=3"), "{line}");
    let status = crate::common::wait_timeout(&mut fwd.child, WAIT);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        TcpStream::connect(&at).is_err(),
        "still accepting after the stop"
    );
}
