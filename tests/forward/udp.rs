//! UDP through `forward udp:`: a DNS-style exchange (a query with an id, an answer with the
//! same id) for 1,000 clients, each answer back to its own client; sessions end when quiet.
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::common::OutputWithin;

use crate::{WAIT, addr, fds, fds_down_to, forward, random_bytes};

/// A resolver-like target: each query `ID NAME` is answered `ID NAME.answer`, to the socket
/// it came from. Returns its address.
async fn resolver() -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = socket.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let mut answer = buf[..n].to_vec();
            answer.extend_from_slice(b".answer");
            let _ = socket.send_to(&answer, from).await;
        }
    });
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_each_get_their_own_answer() {
    let target = resolver().await;
    let mut fwd = forward(&[
        "udp:127.0.0.1:0",
        &format!("udp:{target}"),
        "--udp-timeout",
        "2",
    ]);
    assert_eq!(fwd.lines[0].1, "udp");
    let pid = fwd.child.id();
    let baseline = fds(pid);
    let to = Arc::new(addr(&fwd));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let to = to.clone();
        clients.spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket.connect(to.as_str()).await.unwrap();
            let mut query = (i as u16).to_be_bytes().to_vec();
            query.extend(
                random_bytes(16 + (i as usize % 200), i)
                    .iter()
                    .map(|b| b'a' + b % 26),
            );
            let mut want = query.clone();
            want.extend_from_slice(b".answer");
            let mut buf = vec![0u8; 2048];
            // As a DNS client does: ask again when no answer comes within a second (a burst
            // of 1,000 datagrams may overflow a receive buffer on the way).
            for _ in 0..20 {
                socket.send(&query).await.unwrap();
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await
                {
                    assert_eq!(&buf[..n], &want[..], "client {i} got another's answer");
                    // Kept open until every client is done: a port let go could be the next
                    // client's, which the forward would take for this one's session.
                    return socket;
                }
            }
            panic!("client {i}: no answer in 20 tries");
        });
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut sockets = Vec::new();
    while let Some(done) = tokio::time::timeout_at(deadline, clients.join_next())
        .await
        .expect("clients finish within the bound")
    {
        sockets.push(done.expect("client"));
    }
    drop(sockets);
    // Each session ends once quiet, with its line; its socket is closed.
    for _ in 0..1000 {
        let line = fwd.wait_stderr("relayed");
        assert!(line.contains("quiet for 2 s"), "{line}");
    }
    assert_eq!(fds_down_to(pid, baseline), baseline, "sockets leaked");
}

#[test]
fn udp_on_one_side_only_is_refused_with_a_reason() {
    let out = crate::common::command(crate::bin())
        .args(["forward", "udp:127.0.0.1:0", "127.0.0.1:53"])
        .output_within(crate::WAIT)
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("udp"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
