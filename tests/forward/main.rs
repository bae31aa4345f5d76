//! `taojie forward` with real peers: many clients at once with half-close, a target that is
//! down, Unix sockets, UDP sessions, curl to nginx through it and through two-hop tunnels
//! (Noise and TLS) that a capturing proxy between the ends sees no plaintext of, and the
//! metrics it keeps.
//!
//! This file holds the shared helpers; `relay.rs` the stream relay (integrity, half-close,
//! descriptors, errors), `udp.rs` the UDP sessions, `web.rs` curl and nginx, `tunnel.rs` the
//! encrypted tunnels.
#[path = "../common/certs.rs"]
mod certs;
#[path = "../common/mod.rs"]
mod common;
mod config;
#[allow(dead_code)]
#[path = "../http/nginx.rs"]
mod nginx;
mod relay;
mod tunnel;
mod udp;
mod web;

use std::time::{Duration, Instant};

use common::{Server, bin};

/// Time limit for one process or one wait; generous because the machine may be busy.
const WAIT: Duration = Duration::from_secs(60);

/// Starts `taojie forward ARGS` (stderr captured) and waits for its `forward` line.
fn forward(args: &[&str]) -> Server {
    let mut cmd = crate::common::command(bin());
    cmd.arg("forward").args(args);
    Server::spawn_capturing(cmd, 1)
}

/// The address `server` announced for its forward.
fn addr(server: &Server) -> String {
    server.lines[0].2.clone()
}

/// Pseudo-random bytes (xorshift), every value from 0 to 255, reproducible per seed.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Whether a program this test needs is here (`common::need`: under CI a missing one fails
/// the test; elsewhere the test is a counted SKIP and returns).
fn need(program: &str) -> bool {
    common::need::tool(program)
}

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits (bounded) until `pid` has at most `n` descriptors open; returns the count then.
fn fds_down_to(pid: u32, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = fds(pid);
        if now <= n || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A target that proves half-close: it reads each connection to its end (so it answers only
/// once the client's FIN has come through), then sends the bytes back reversed and closes.
/// Runs on a thread of its own until the test process ends; returns its address.
fn reverser() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // A backlog for every client at once (tokio's default, 1,024, is just enough on
            // paper: on a busy machine this one thread accepts late, the queue overflows, and
            // the kernel resets connections the forward already wrote to).
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(4096).unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    if s.read_to_end(&mut got).await.is_ok() {
                        got.reverse();
                        let _ = s.write_all(&got).await;
                        let _ = s.shutdown().await;
                    }
                });
            }
        });
    });
    rx.recv_timeout(WAIT).expect("reverser bound")
}

/// Opens `n` connections to `addr` at once (all connected before any sends), each sending
/// its own random bytes, half-closing, and reading the answer to its end; checks each got
/// its own bytes reversed. `size(i)` is connection i's payload.
async fn clients_through(addr: &str, n: usize, size: impl Fn(usize) -> usize) {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (addr, barrier, len) = (addr.to_string(), barrier.clone(), size(i));
        tasks.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            barrier.wait().await;
            let data = random_bytes(len, i as u64);
            let (mut r, mut w) = s.split();
            let send = async {
                w.write_all(&data).await?;
                w.shutdown().await
            };
            let mut back = Vec::new();
            let (sent, got) = tokio::join!(send, r.read_to_end(&mut back));
            sent.expect("send");
            got.expect("receive");
            let mut want = data;
            want.reverse();
            assert!(
                back == want,
                "connection {i}: {} bytes back, wrong ones",
                back.len()
            );
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Some(done) = tokio::time::timeout_at(deadline, tasks.join_next())
        .await
        .expect("clients finish within the bound")
    {
        done.expect("client");
    }
}
