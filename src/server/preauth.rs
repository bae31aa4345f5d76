//! Pre-authentication limits: how many connections may be in their handshake at once, in
//! total and per source address, and how long each may take — so that slowloris clients (a
//! byte every few seconds) and handshake floods cannot starve the clients that have the key.
//!
//! Every keyed listener runs its handshake through [`PreAuth::handshake`]. A connection over
//! the per-address cap is closed at once. When the total is reached, the *oldest* handshake
//! in flight is dropped for the newcomer rather than the newcomer refused: a real client
//! needs a millisecond or so, so a flood of half-open connections would have to open the whole
//! cap's worth within that millisecond to crowd it out, while refusing newcomers would let a
//! flood from enough addresses lock everyone out for as long as it lasts.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Peer;

/// Default cap on handshakes in flight per listener. A pending handshake costs a socket, a
/// task and a few KiB; a real one ends within a few round trips (under a millisecond on a
/// LAN), so 1,024 in flight is far more than honest clients need, and small next to the
/// 10,000 connections a listener serves, which stay free for those who proved their key.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1024;
/// Default cap on handshakes in flight from one address (an IPv6 /64). One host, or an
/// office behind one NAT, rarely starts more than a few at the same moment; 64 leaves room for
/// scripts running clients in parallel, while one address alone cannot fill the total.
pub const DEFAULT_MAX_HANDSHAKES_PER_ADDR: usize = 64;
/// Default deadline, in seconds, for a connection to prove its key. The handshake is two
/// round trips and a few hundred bytes: 5 s covers a slow mobile or satellite link several
/// times over, and bounds how long a slowloris client holds its slot.
pub const DEFAULT_HANDSHAKE_TIMEOUT: f64 = 5.0;

/// The flags of every keyed listener.
#[derive(Args, Debug, Clone)]
pub struct PreAuthArgs {
    /// Connections in their handshake at once, from all addresses; when full, the oldest is
    /// dropped for the newcomer (real handshakes take a millisecond; a flood of half-open
    /// connections cannot crowd them out)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_HANDSHAKES)]
    pub max_handshakes: usize,
    /// Connections in their handshake at once from one address (IPv6: one /64); more from
    /// it are closed at once (room for a NAT or parallel scripts; one address cannot fill the
    /// total)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_HANDSHAKES_PER_ADDR)]
    pub max_handshakes_per_addr: usize,
    /// Seconds a connection has to prove its key before it is closed (two round trips take
    /// far less even on a slow link; the deadline bounds what a slowloris client holds)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT, value_parser = crate::flags::positive_secs)]
    pub handshake_timeout: f64,
}

impl Default for PreAuthArgs {
    fn default() -> Self {
        PreAuthArgs {
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_addr: DEFAULT_MAX_HANDSHAKES_PER_ADDR,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl PreAuthArgs {
    /// The caps these flags ask for.
    pub fn caps(&self) -> Caps {
        Caps::new(
            self.max_handshakes,
            self.max_handshakes_per_addr,
            Duration::from_secs_f64(self.handshake_timeout.clamp(0.001, 86_400.0)),
        )
    }
}

/// A guard's caps; each handshake is admitted under the caps in force when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Handshakes in flight at once, from all addresses (at least 1).
    pub max_total: usize,
    /// Handshakes in flight at once from one address (at least 1).
    pub max_per_addr: usize,
    /// How long each may take.
    pub deadline: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        PreAuthArgs::default().caps()
    }
}

/// Caps a guard reads afresh for each handshake: a change (SIGHUP with `taojie serve
/// --config`) applies to handshakes that start after it. Plain [`Caps`] convert into caps
/// that never change.
#[derive(Clone, Debug)]
pub struct LiveCaps(watch::Receiver<Caps>);

impl LiveCaps {
    /// Caps starting at `caps` that change whenever the returned sender sends.
    pub fn channel(caps: Caps) -> (watch::Sender<Caps>, LiveCaps) {
        let (tx, rx) = watch::channel(caps);
        (tx, LiveCaps(rx))
    }
}

impl From<Caps> for LiveCaps {
    fn from(caps: Caps) -> Self {
        // With the sender gone the receiver keeps the last value for good.
        LiveCaps::channel(caps).1
    }
}

impl Default for LiveCaps {
    fn default() -> Self {
        Caps::default().into()
    }
}

impl Caps {
    /// Caps of at least one handshake each.
    pub fn new(max_total: usize, max_per_addr: usize, deadline: Duration) -> Caps {
        Caps {
            max_total: max_total.max(1),
            max_per_addr: max_per_addr.max(1),
            deadline,
        }
    }
}

/// Why a connection's handshake was cut short by the guard.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Cut {
    /// Its address already had the most handshakes in flight allowed.
    #[error("{0} handshakes already in flight from this address (--max-handshakes-per-addr)")]
    PerAddress(usize),
    /// It took longer than the deadline.
    #[error("no key proven within {0:?} (--handshake-timeout)")]
    Timeout(Duration),
    /// The total was reached and this was the oldest in flight.
    #[error("dropped for a newer connection: {0} handshakes in flight (--max-handshakes)")]
    Evicted(usize),
}

/// The handshakes in flight on one listener (or several sharing the caps).
#[derive(Debug)]
pub struct PreAuth {
    caps: watch::Receiver<Caps>,
    state: Mutex<State>,
    /// Whose refusals and failed handshakes these are, in the logs' counts and the metrics.
    service: &'static str,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// In arrival order: the first is the oldest.
    pending: BTreeMap<u64, (Option<IpAddr>, CancellationToken)>,
    per_addr: HashMap<IpAddr, usize>,
}

impl State {
    fn forget(&mut self, addr: Option<IpAddr>) {
        if let Some(a) = addr
            && let Some(n) = self.per_addr.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&a);
            }
        }
    }
}

/// A handshake's place among those in flight; leaving frees it.
struct Ticket<'a> {
    guard: &'a PreAuth,
    id: u64,
    evicted: CancellationToken,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut st = self.guard.lock();
        if let Some((addr, _)) = st.pending.remove(&self.id) {
            st.forget(addr);
        }
    }
}

/// The address a per-address cap counts under: IPv4 as is, IPv6 by its /64 (what one host
/// or one site is given), nothing for Unix-domain peers (local users, no address to tell).
fn source(peer: &Peer) -> Option<IpAddr> {
    match peer {
        Peer::Tcp(a) => Some(match a.ip().to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            v4 => v4,
        }),
        Peer::Unix => None,
    }
}

impl PreAuth {
    /// A guard: at most `max_total` handshakes (at least 1) in flight, `max_per_addr` (at
    /// least 1) from one address, each given `deadline`.
    pub fn new(max_total: usize, max_per_addr: usize, deadline: Duration) -> PreAuth {
        PreAuth::live(Caps::new(max_total, max_per_addr, deadline).into())
    }

    /// A guard whose caps follow `caps`: a change applies to handshakes that start after it.
    pub fn live(caps: LiveCaps) -> PreAuth {
        PreAuth {
            caps: caps.0,
            state: Mutex::new(State::default()),
            service: "unnamed",
        }
    }

    /// The same guard, counting its refusals under `service` in the metrics.
    pub fn for_service(self, service: &'static str) -> PreAuth {
        PreAuth { service, ..self }
    }

    /// The caps in force now.
    pub fn caps(&self) -> Caps {
        *self.caps.borrow()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handshakes in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    fn admit(&self, peer: &Peer, caps: Caps) -> Result<Ticket<'_>, Cut> {
        let addr = source(peer);
        let mut st = self.lock();
        if let Some(a) = addr {
            let n = st.per_addr.entry(a).or_insert(0);
            if *n >= caps.max_per_addr {
                return Err(Cut::PerAddress(*n));
            }
            *n += 1;
        }
        while st.pending.len() >= caps.max_total {
            let Some((_, (old, token))) = st.pending.pop_first() else {
                break;
            };
            token.cancel();
            st.forget(old);
        }
        let id = st.next;
        st.next += 1;
        let evicted = CancellationToken::new();
        st.pending.insert(id, (addr, evicted.clone()));
        Ok(Ticket {
            guard: self,
            id,
            evicted,
        })
    }

    /// Runs `handshake` for a connection from `peer` within the caps and the deadline.
    /// Returns its result, or why the guard cut it (the future is dropped then, which closes
    /// the connection it owns).
    pub async fn run<F: Future>(&self, peer: &Peer, handshake: F) -> Result<F::Output, Cut> {
        let caps = self.caps();
        let ticket = self.admit(peer, caps)?;
        tokio::select! {
            biased;
            out = handshake => Ok(out),
            _ = ticket.evicted.cancelled() => Err(Cut::Evicted(caps.max_total)),
            _ = tokio::time::sleep(caps.deadline) => Err(Cut::Timeout(caps.deadline)),
        }
    }

    /// [`run`](Self::run) for a handshake that may fail, with every failure logged through
    /// [`super::refused`] (so floods are summarised): `kind` names a failure of the
    /// handshake itself ("handshake refused"). Resolves to the handshake's result when it
    /// succeeded. Await it where it is made: the handshake's state (a few KiB for Noise) is
    /// then kept once, in the connection's task.
    pub fn handshake<'a, F>(
        &'a self,
        peer: &'a Peer,
        kind: &'static str,
        handshake: F,
    ) -> Guarded<'a, F> {
        let caps = self.caps();
        let (ticket, refused) = match self.admit(peer, caps) {
            Ok(t) => (Some(t), None),
            Err(cut) => (None, Some(cut)),
        };
        let evicted = ticket
            .as_ref()
            .map_or_else(CancellationToken::new, |t| t.evicted.clone())
            .cancelled_owned();
        Guarded {
            handshake,
            deadline: tokio::time::sleep(caps.deadline),
            evicted,
            ticket,
            refused,
            peer,
            kind,
            caps,
            service: self.service,
        }
    }
}

pin_project_lite::pin_project! {
    /// A handshake under a [`PreAuth`] guard (see [`PreAuth::handshake`]): a future written
    /// out by hand, not an `async fn`, because an `async fn` keeps its argument and each
    /// future it awaits in slots of their own, and this one holds a whole handshake.
    pub struct Guarded<'a, F> {
        #[pin]
        handshake: F,
        #[pin]
        deadline: tokio::time::Sleep,
        #[pin]
        evicted: tokio_util::sync::WaitForCancellationFutureOwned,
        ticket: Option<Ticket<'a>>,
        refused: Option<Cut>,
        peer: &'a Peer,
        kind: &'static str,
        caps: Caps,
        service: &'static str,
    }
}

impl<F> Guarded<'_, F> {
    /// Counts this handshake's refusal, if any, under `service` rather than the guard's (a
    /// second listener sharing the guard, such as `exec-classic`).
    pub fn counted_as(self, service: &'static str) -> Self {
        Guarded { service, ..self }
    }
}

impl<T, E: Display, F: Future<Output = Result<T, E>>> Future for Guarded<'_, F> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.project();
        let peer: &Peer = this.peer;
        let cut = if let Some(cut) = this.refused.take() {
            cut
        } else if let Poll::Ready(out) = this.handshake.poll(cx) {
            this.ticket.take();
            return Poll::Ready(match out {
                Ok(t) => Some(t),
                Err(e) => {
                    crate::metrics::service(this.service).auth_failures.inc();
                    super::refused(this.service, this.kind, peer, &e);
                    None
                }
            });
        } else if this.evicted.poll(cx).is_ready() {
            Cut::Evicted(this.caps.max_total)
        } else if this.deadline.poll(cx).is_ready() {
            Cut::Timeout(this.caps.deadline)
        } else {
            return Poll::Pending;
        };
        this.ticket.take();
        let service: &'static str = this.service;
        match cut {
            // The server's state, not this peer's doing: one tally for all addresses.
            Cut::Evicted(_) => {
                super::refused_any(service, "handshake dropped: too many in flight", peer, &cut)
            }
            Cut::PerAddress(_) => {
                super::refused(service, "too many handshakes from one address", peer, &cut)
            }
            Cut::Timeout(_) => super::refused(service, "handshake timed out", peer, &cut),
        }
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Peer {
        Peer::Tcp(s.parse().unwrap())
    }

    #[tokio::test]
    async fn caps_per_address_evicts_the_oldest_and_frees_slots_on_the_way_out() {
        let g = PreAuth::new(3, 2, Duration::from_secs(60));
        let a1 = g.admit(&peer("127.0.0.1:1"), g.caps()).unwrap();
        let a2 = g.admit(&peer("127.0.0.1:2"), g.caps()).unwrap();
        assert!(matches!(
            g.admit(&peer("127.0.0.1:3"), g.caps()),
            Err(Cut::PerAddress(2))
        ));
        // Another address gets in; a fourth overall evicts the oldest (a1).
        let _b = g.admit(&peer("127.0.0.2:1"), g.caps()).unwrap();
        assert!(!a1.evicted.is_cancelled());
        let _c = g.admit(&peer("127.0.0.3:1"), g.caps()).unwrap();
        assert!(a1.evicted.is_cancelled());
        assert_eq!(g.in_flight(), 3);
        // a1's address has a slot again (eviction freed it), and the newcomer evicts a2.
        drop(a1);
        let a3 = g.admit(&peer("127.0.0.1:4"), g.caps()).unwrap();
        assert!(a2.evicted.is_cancelled());
        assert_eq!(g.in_flight(), 3);
        drop(a3);
        assert_eq!(g.in_flight(), 2);
        // ... and IPv6 addresses count by their /64.
        let v6 = PreAuth::new(10, 1, Duration::from_secs(60));
        let _x = v6.admit(&peer("[2001:db8::1]:1"), v6.caps()).unwrap();
        assert!(v6.admit(&peer("[2001:db8::2]:1"), v6.caps()).is_err());
        assert!(v6.admit(&peer("[2001:db8:0:1::2]:1"), v6.caps()).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_handshake_is_cut_at_the_deadline() {
        let g = PreAuth::new(10, 10, Duration::from_secs(5));
        let p = peer("127.0.0.1:1");
        let slow = g.run(&p, std::future::pending::<()>()).await;
        assert!(matches!(slow, Err(Cut::Timeout(_))));
        assert_eq!(g.in_flight(), 0);
        let quick = g.run(&p, async { 7 }).await;
        assert_eq!(quick.unwrap(), 7);
    }
}
