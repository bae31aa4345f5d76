//! The UDP hub with Python clients written like the seeds' QQ clients.
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::common::run_program;
use super::{Client, WAIT, chat_server, common};

/// Waits until the hub relays to `client` (its start-up datagram has been taken in): a probe
/// peer sends a line every half second until the client prints it.
fn registered(client: &mut Client, hub: &str) {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        probe.send_to(b"probe: are you there", hub).unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(line) = client
            .rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            let done = line.ends_with("probe: are you there");
            client.seen.push(line);
            if done {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the hub never relayed to the client: {:?}",
            client.seen
        );
    }
}

#[test]
fn seed_style_udp_clients_talk_through_the_hub() {
    if !crate::common::need::tool("python3") {
        return;
    }
    let server = chat_server(&["--udp", "127.0.0.1:0"]);
    let hub = server.addr("chat", "udp");
    let mut dora = Client::taojie(&hub, "dora", &["--udp"]);
    registered(&mut dora, &hub);
    // Written like the seeds' QQ clients: sendto `NAME: text`, recvfrom 1024.
    let script = r#"
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
hub = (host, int(port))
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.settimeout(10)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.settimeout(10)
b.sendto('金老板: 在吗'.encode('utf-8'), hub)
a.sendto('小红: 你好'.encode('utf-8'), hub)
msg, addr = b.recvfrom(1024)
assert msg.decode('utf-8') == '小红: 你好', msg
b.sendto('金老板: 收到\x1b[2J'.encode('utf-8'), hub)
msg, addr = a.recvfrom(1024)
assert msg.decode('utf-8') == '金老板: 收到^[[2J', msg
a.sendto(b'x' * 5000, hub)
msg, addr = a.recvfrom(1024)
assert b'too long' in msg, msg
a.sendto('小红: bye'.encode('utf-8'), hub)
print('ok')
"#;
    let (status, out, err) = run_program("python3", &["-c", script, &hub], b"", WAIT);
    assert!(status.success(), "python: {err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "ok");
    // The taojie client, heard from at start, got every relayed line but the overlong one.
    dora.wait_line("小红: 你好");
    dora.wait_line("金老板: 收到^[[2J");
    dora.wait_line("小红: bye");
    assert!(!dora.seen.iter().any(|l| l.contains("xxxx")));
    dora.send("hello python");
    drop(dora.stdin.take());
    let status = common::wait_timeout(&mut dora.child, WAIT).expect("client exits at end of input");
    assert!(status.success());
}
