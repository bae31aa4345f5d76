//! The UDP hub: each datagram (`NAME: text`, as the seeds' UDP chat clients send) goes to
//! every other peer heard from lately, with the broker's limits: a size cap, sanitised text.
//!
//! Source addresses can be forged, so who counts as a peer is bounded ([`peers`]): taojie's
//! client proves its address with a cookie ([`cookie`]) and gets every message; a seed client,
//! which cannot, is a peer too, but the hub sends all unproven peers together about as many
//! bytes as it receives, so forged registrations make it no amplifier.
use std::future::Future;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::line::valid_name;
use crate::server::Datagrams;
use crate::tty::sanitize;

pub mod cookie;
pub mod peers;

use peers::{Admit, Budget, Peers, wire_len};
pub use peers::{MAX_PEERS, PEER_TTL};

/// The notice to a sender the peer table has no room for.
const FULL: &[u8] = b"*** hub full: what you send is relayed, but you receive nothing for now\n";

/// What the hub sends on: the socket, its counter, and the budget for unproven peers.
struct Sender<'s> {
    socket: &'s UdpSocket,
    meter: &'static crate::metrics::Service,
    budget: Budget,
    /// Datagrams left out for want of budget since the last log line.
    held_back: u64,
}

impl Sender<'_> {
    /// Sends `msg` to `to`: always to a proven address, to another within the budget.
    fn send(&mut self, msg: &[u8], to: SocketAddr, proven: bool, now: Instant) {
        if !proven && !self.budget.spend(wire_len(msg.len(), to), now) {
            self.held_back += 1;
            return;
        }
        // A full socket buffer loses this datagram for that peer only, as UDP may.
        match self.socket.try_send_to(msg, to) {
            Ok(n) => {
                self.meter.bytes_out.inc_by(n as u64);
            }
            Err(e) => debug!(peer = %to, error = %e, "udp relay failed"),
        }
    }
}

/// Relays datagrams on `socket` until `shutdown` resolves. An empty datagram only says "I am
/// here", so a peer can listen before it speaks.
pub async fn serve(socket: UdpSocket, max_line: usize, shutdown: impl Future<Output = ()>) {
    let cookies = match cookie::Cookies::new() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "udp hub not started: no randomness for its cookies");
            return;
        }
    };
    let start = Instant::now();
    let mut peers = Peers::new(start);
    let mut out = Sender {
        socket: &socket,
        meter: crate::metrics::service("chat"),
        budget: Budget::new(start),
        held_back: 0,
    };
    let mut last_note = start;
    let mut incoming = Datagrams::new("chat", &socket, shutdown);
    while let Some((raw, from)) = incoming.next().await {
        let now = Instant::now();
        out.budget.earn(wire_len(raw.len(), from), now);
        if out.held_back > 0 && now.duration_since(last_note).as_secs() >= 10 {
            debug!(
                datagrams = out.held_back,
                "udp hub held back datagrams to unproven peers (over budget)"
            );
            out.held_back = 0;
            last_note = now;
        }
        if let Some(control) = cookie::parse(raw) {
            match control {
                // The welcome is no larger than the hello (see `cookie`); still on budget.
                cookie::Control::Hello { padded: true } => {
                    let welcome = cookie::welcome(&cookies.issue(from));
                    out.send(&welcome, from, false, now);
                }
                cookie::Control::Proof(c) if cookies.check(from, &c) => {
                    if peers.proved(from, now) == Admit::Full {
                        out.send(FULL, from, true, now);
                    }
                }
                _ => debug!(%from, "udp hub ignored a control datagram"),
            }
            continue;
        }
        // A sender the table has no room for still speaks; it only hears nothing.
        let admitted = peers.heard(from, now);
        let proven = peers.is_proven(from, now);
        if admitted == Admit::Full {
            out.send(FULL, from, proven, now);
        }
        if raw.is_empty() {
            continue;
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        if raw.len() > max_line {
            let note = format!("*** message too long (over {max_line} bytes); not sent\n");
            out.send(note.as_bytes(), from, proven, now);
            continue;
        }
        let msg = attribute(&sanitize(raw), from);
        for (peer, proven) in peers.recipients(from, now) {
            out.send(msg.as_bytes(), peer, proven, now);
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
