//! Who the hub relays to, and how much it may send to addresses nobody has proven.
//!
//! A UDP source address can be forged, so a fan-out hub that relays to whoever wrote to it
//! would send every message to as many victims as an attacker names. [`Peers`] bounds who
//! counts as a peer: a cap in all, a lower cap on peers that have not proven their address
//! ([`super::cookie`]), caps per source address (an IPv6 /64 counts as one), and a short
//! expiry for a peer heard from only once. [`Budget`] bounds the bytes sent to unproven
//! peers: about one byte out per byte received, plus a trickle, so forged registrations turn
//! the hub into no amplifier. Proven peers (taojie's client) get every message.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use crate::server::per_source::source_key as source;

/// A peer heard from more than once, or proven, gets nothing after this long without news.
pub const PEER_TTL: Duration = Duration::from_secs(600);
/// A peer heard from only once (one datagram, perhaps forged) gets nothing after this long.
pub const FIRST_TTL: Duration = Duration::from_secs(30);
/// A proof of address lasts this long (taojie's client proves again every two minutes).
pub const PROOF_TTL: Duration = Duration::from_secs(300);
/// Most peers remembered at once; a new peer beyond this is told the hub is full.
pub const MAX_PEERS: usize = 4096;
/// Most peers that have not proven their address.
pub const MAX_UNPROVEN: usize = 256;
/// Most peers at one source address (IPv4 address, IPv6 /64): room for a NAT.
pub const PER_SOURCE: usize = 64;
/// Most unproven peers at one source address.
pub const PER_SOURCE_UNPROVEN: usize = 16;

/// Credit, in bytes on the wire, for each byte on the wire received.
pub const BUDGET_RATIO: f64 = 1.0;
/// Credit earned each second however little arrives: a room of seed clients talking.
pub const BUDGET_REFILL: f64 = 8192.0;
/// Most credit saved up.
pub const BUDGET_BURST: f64 = 32768.0;

/// A datagram of `payload` bytes to or from `addr`, with its IP and UDP headers.
pub fn wire_len(payload: usize, addr: SocketAddr) -> usize {
    payload
        + match addr.ip().to_canonical() {
            IpAddr::V4(_) => 28,
            IpAddr::V6(_) => 48,
        }
}

struct Peer {
    seen: Instant,
    heard: u32,
    /// Counted as proven (the counts change only here and in [`Peers::prune`]).
    proven: bool,
    proven_until: Instant,
}

impl Peer {
    fn expires(&self) -> Instant {
        let ttl = if self.proven || self.heard > 1 {
            PEER_TTL
        } else {
            FIRST_TTL
        };
        self.seen + ttl
    }
}

#[derive(Default)]
struct Count {
    all: usize,
    unproven: usize,
}

/// What became of a datagram's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Already a peer.
    Known,
    /// A new peer.
    New,
    /// Not a peer: a cap is reached.
    Full,
}

/// The peer table.
pub struct Peers {
    map: HashMap<SocketAddr, Peer>,
    sources: HashMap<IpAddr, Count>,
    unproven: usize,
    last_prune: Instant,
}

impl Peers {
    /// An empty table.
    pub fn new(now: Instant) -> Peers {
        Peers {
            map: HashMap::new(),
            sources: HashMap::new(),
            unproven: 0,
            last_prune: now,
        }
    }

    /// Peers in the table (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A datagram (a message, or an empty "I am here") came from `from`.
    pub fn heard(&mut self, from: SocketAddr, now: Instant) -> Admit {
        if let Some(p) = self.map.get_mut(&from) {
            p.seen = now;
            p.heard = p.heard.saturating_add(1);
            return Admit::Known;
        }
        self.prune_if_due(now);
        let count = self.sources.get(&source(from.ip()));
        let (all, unproven) = count.map_or((0, 0), |c| (c.all, c.unproven));
        if self.map.len() >= MAX_PEERS
            || self.unproven >= MAX_UNPROVEN
            || all >= PER_SOURCE
            || unproven >= PER_SOURCE_UNPROVEN
        {
            return Admit::Full;
        }
        self.insert(from, now, false);
        Admit::New
    }

    /// `from` echoed a good cookie: it is proven for [`PROOF_TTL`].
    pub fn proved(&mut self, from: SocketAddr, now: Instant) -> Admit {
        if let Some(p) = self.map.get_mut(&from) {
            p.seen = now;
            p.heard = p.heard.saturating_add(1);
            p.proven_until = now + PROOF_TTL;
            if !p.proven {
                p.proven = true;
                self.unproven -= 1;
                if let Some(c) = self.sources.get_mut(&source(from.ip())) {
                    c.unproven -= 1;
                }
            }
            return Admit::Known;
        }
        self.prune_if_due(now);
        let all = self.sources.get(&source(from.ip())).map_or(0, |c| c.all);
        if self.map.len() >= MAX_PEERS || all >= PER_SOURCE {
            return Admit::Full;
        }
        self.insert(from, now, true);
        Admit::New
    }

    fn insert(&mut self, from: SocketAddr, now: Instant, proven: bool) {
        self.map.insert(
            from,
            Peer {
                seen: now,
                // A proof took a hello and an answer: heard from twice.
                heard: if proven { 2 } else { 1 },
                proven,
                proven_until: if proven { now + PROOF_TTL } else { now },
            },
        );
        let c = self.sources.entry(source(from.ip())).or_default();
        c.all += 1;
        if !proven {
            c.unproven += 1;
            self.unproven += 1;
        }
    }

    /// Prunes every ten seconds, and (at most once a second) when a cap is in the way.
    fn prune_if_due(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last_prune);
        let full = self.map.len() >= MAX_PEERS || self.unproven >= MAX_UNPROVEN;
        if since >= Duration::from_secs(10) || (full && since >= Duration::from_secs(1)) {
            self.prune(now);
        }
    }

    /// Forgets expired peers and demotes peers whose proof has run out.
    pub fn prune(&mut self, now: Instant) {
        self.last_prune = now;
        let (sources, unproven) = (&mut self.sources, &mut self.unproven);
        self.map.retain(|addr, p| {
            let key = source(addr.ip());
            if p.proven && now >= p.proven_until {
                p.proven = false;
                *unproven += 1;
                if let Some(c) = sources.get_mut(&key) {
                    c.unproven += 1;
                }
            }
            if now < p.expires() {
                return true;
            }
            if let Some(c) = sources.get_mut(&key) {
                c.all -= 1;
                if !p.proven {
                    c.unproven -= 1;
                }
            }
            if !p.proven {
                *unproven -= 1;
            }
            false
        });
        self.sources.retain(|_, c| c.all > 0);
    }

    /// Every live peer but `except`, and whether its address is proven.
    pub fn recipients(
        &self,
        except: SocketAddr,
        now: Instant,
    ) -> impl Iterator<Item = (SocketAddr, bool)> + '_ {
        self.map
            .iter()
            .filter(move |(addr, p)| **addr != except && now < p.expires())
            .map(move |(addr, p)| (*addr, p.proven && now < p.proven_until))
    }

    /// Whether `addr` is a peer with a proof in force.
    pub fn is_proven(&self, addr: SocketAddr, now: Instant) -> bool {
        self.map
            .get(&addr)
            .is_some_and(|p| p.proven && now < p.proven_until)
    }
}

/// The bytes (on the wire) the hub may still send to addresses nobody has proven: earned by
/// what it receives, [`BUDGET_RATIO`] to one, plus [`BUDGET_REFILL`] a second, saved up to
/// [`BUDGET_BURST`].
pub struct Budget {
    credit: f64,
    at: Instant,
}

impl Budget {
    /// A full budget.
    pub fn new(now: Instant) -> Budget {
        Budget {
            credit: BUDGET_BURST,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.credit = (self.credit + secs * BUDGET_REFILL).min(BUDGET_BURST);
        self.at = now;
    }

    /// `bytes` (on the wire) were received.
    pub fn earn(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.credit = (self.credit + bytes as f64 * BUDGET_RATIO).min(BUDGET_BURST);
    }

    /// Takes `bytes` (on the wire) from the budget; `false`, taking nothing, when they do not
    /// fit.
    pub fn spend(&mut self, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        if self.credit < bytes as f64 {
            return false;
        }
        self.credit -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32, port: u16) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + i), port))
    }

    #[test]
    fn unproven_peers_are_capped_per_source_and_in_all() {
        let now = Instant::now();
        let mut peers = Peers::new(now);
        for port in 0..PER_SOURCE_UNPROVEN as u16 {
            assert_eq!(peers.heard(addr(1, port), now), Admit::New);
        }
        assert_eq!(peers.heard(addr(1, 999), now), Admit::Full);
        assert_eq!(peers.heard(addr(1, 0), now), Admit::Known);
        // A proven peer at the same address still fits (a NAT), up to PER_SOURCE in all.
        assert_eq!(peers.proved(addr(1, 1000), now), Admit::New);
        for i in 2..=(MAX_UNPROVEN as u32 - PER_SOURCE_UNPROVEN as u32 + 1) {
            assert_eq!(peers.heard(addr(i, 1), now), Admit::New, "{i}");
        }
        assert_eq!(peers.heard(addr(100_000, 1), now), Admit::Full);
        // Proving an unproven peer makes room for another.
        assert_eq!(peers.proved(addr(2, 1), now), Admit::Known);
        assert_eq!(peers.heard(addr(100_000, 1), now), Admit::New);
    }

    #[test]
    fn a_peer_heard_once_expires_soon_and_proofs_run_out() {
        let now = Instant::now();
        let mut peers = Peers::new(now);
        peers.heard(addr(1, 1), now);
        peers.heard(addr(2, 1), now);
        peers.heard(addr(2, 1), now);
        peers.proved(addr(3, 1), now);
        let later = now + FIRST_TTL + Duration::from_secs(1);
        let live: Vec<_> = peers.recipients(addr(9, 9), later).collect();
        assert_eq!(live.len(), 2);
        assert!(live.contains(&(addr(3, 1), true)));
        peers.prune(later);
        assert_eq!(peers.len(), 2);
        let after_proof = now + PROOF_TTL + Duration::from_secs(1);
        assert!(!peers.is_proven(addr(3, 1), after_proof));
        peers.prune(after_proof);
        assert_eq!(peers.unproven, 2);
        peers.prune(now + PEER_TTL + Duration::from_secs(1));
        assert!(peers.is_empty());
        assert_eq!(peers.unproven, 0);
        assert!(peers.sources.is_empty());
    }

    #[test]
    fn the_budget_pays_about_a_byte_out_per_byte_in() {
        let now = Instant::now();
        let mut b = Budget::new(now);
        assert!(b.spend(BUDGET_BURST as usize, now));
        assert!(!b.spend(1, now));
        b.earn(100, now);
        assert!(b.spend(60, now));
        assert!(!b.spend(60, now));
        assert!(b.spend(8000, now + Duration::from_secs(1)));
    }
}
