//! The UDP hub: each datagram (`NAME: text`, as the seeds' UDP chat clients send) goes to
//! every other peer heard from in the last ten minutes, with the broker's limits: a size cap,
//! sanitised text, and a bounded peer table.
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::debug;

use super::line::{sanitize, valid_name};
use crate::server::Datagrams;

/// A peer not heard from for this long gets nothing more.
pub const PEER_TTL: Duration = Duration::from_secs(600);
/// Most peers remembered at once; a new peer beyond this is told the hub is full.
pub const MAX_PEERS: usize = 4096;

/// Relays datagrams on `socket` until `shutdown` resolves. An empty datagram only says "I am
/// here" (the taojie client sends one on start and now and then), so a peer can listen
/// before it speaks.
pub async fn serve(socket: UdpSocket, max_line: usize, shutdown: impl Future<Output = ()>) {
    let mut peers: HashMap<SocketAddr, Instant> = HashMap::new();
    let mut last_prune = Instant::now();
    let meter = crate::metrics::service("chat");
    let mut incoming = Datagrams::new("chat", &socket, shutdown);
    while let Some((raw, from)) = incoming.next().await {
        let now = Instant::now();
        if now.duration_since(last_prune) > Duration::from_secs(10) || peers.len() >= MAX_PEERS {
            peers.retain(|_, seen| now.duration_since(*seen) < PEER_TTL);
            last_prune = now;
        }
        if peers.len() >= MAX_PEERS && !peers.contains_key(&from) {
            let _ = socket.try_send_to(b"*** hub full, try later\n", from);
            continue;
        }
        peers.insert(from, now);
        if raw.is_empty() {
            continue;
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        if raw.len() > max_line {
            let note = format!("*** message too long (over {max_line} bytes); not sent\n");
            let _ = socket.try_send_to(note.as_bytes(), from);
            continue;
        }
        let msg = attribute(&sanitize(raw), from);
        for (&peer, seen) in &peers {
            if peer != from && now.duration_since(*seen) < PEER_TTL {
                // A full socket buffer loses this datagram for that peer only, as UDP may.
                match socket.try_send_to(msg.as_bytes(), peer) {
                    Ok(n) => {
                        meter.bytes_out.inc_by(n as u64);
                    }
                    Err(e) => debug!(%peer, error = %e, "udp relay failed"),
                }
            }
        }
    }
}

/// `NAME: text` stays as it is; a datagram with no valid name is attributed to its address.
pub fn attribute(text: &str, from: SocketAddr) -> String {
    match text.split_once(':') {
        Some((name, body)) if valid_name(name.trim()).is_ok() => {
            format!("{}: {}", name.trim(), body.trim_start())
        }
        _ => format!("{from}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kept_or_addresses_added() {
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(attribute("小红: 你好", a), "小红: 你好");
        assert_eq!(attribute("hello", a), "127.0.0.1:5000: hello");
        assert_eq!(attribute("<x>: hi", a), "127.0.0.1:5000: <x>: hi");
    }
}
