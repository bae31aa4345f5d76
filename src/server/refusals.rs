//! Per-connection warnings aggregated per kind and peer address: a flood of junk connections
//! from one address costs a few log lines, then one summary every [`WINDOW`], not a line
//! each — so it fills neither a disk nor a journal, and the log stays readable.
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use super::Peer;

/// Refusals of one kind from one address shown on their own in a window; the rest are counted.
pub const SHOWN: u32 = 3;
/// How long refusals are counted before the count is reported.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Addresses tallied at once; refusals from further ones share one tally ("other
/// addresses"), so an attacker with many addresses cannot grow the table without bound, and
/// brings at most this many times [`SHOWN`] lines a window.
const MAX_SOURCES: usize = 256;
/// Summaries written per kind and window; the addresses with fewer refusals are folded into
/// one "other addresses" line, so a flood from many addresses is a few lines a window.
pub const MAX_SUMMARIES: usize = 10;

/// Where refusals came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IP address (IPv4-mapped IPv6 addresses as IPv4).
    Ip(IpAddr),
    /// A Unix-domain peer.
    Unix,
    /// Any address past the table's capacity, or a summary's smaller ones.
    Other,
    /// Refusals that are the server's state rather than one peer's doing (too many
    /// handshakes in flight), tallied together whoever they hit.
    Any,
}

impl From<&Peer> for Source {
    fn from(peer: &Peer) -> Source {
        match peer {
            Peer::Tcp(a) => Source::Ip(a.ip().to_canonical()),
            Peer::Unix => Source::Unix,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(ip) => ip.fmt(f),
            Source::Unix => f.write_str("unix peers"),
            Source::Other => f.write_str("other addresses"),
            Source::Any => f.write_str("all addresses"),
        }
    }
}

/// Refusals of one kind from one source in the current window.
#[derive(Debug)]
struct Tally {
    since: Instant,
    shown: u32,
    more: u64,
    /// The previous window had to be summarised: the flood goes on, so this window shows
    /// none on its own and only its summary is written.
    quiet: bool,
}

/// What a window hid: `more` refusals of `kind` from `from`, beyond those shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The kind, as in the lines shown.
    pub kind: &'static str,
    /// The address.
    pub from: Source,
    /// Refusals not shown on their own.
    pub more: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} more refused from {} in the last {} s ({})",
            self.more,
            self.from,
            WINDOW.as_secs(),
            self.kind
        )
    }
}

/// The tallies, per kind and source.
#[derive(Debug, Default)]
pub struct Refusals {
    tallies: Mutex<HashMap<(&'static str, Source), Tally>>,
}

impl Refusals {
    /// An empty table.
    pub fn new() -> Refusals {
        Refusals::default()
    }

    /// Counts one refusal at `now`; returns whether it is to be shown on its own.
    pub fn note(&self, kind: &'static str, from: Source, now: Instant) -> bool {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let from = if tallies.len() >= MAX_SOURCES && !tallies.contains_key(&(kind, from)) {
            Source::Other
        } else {
            from
        };
        let tally = tallies.entry((kind, from)).or_insert(Tally {
            since: now,
            shown: 0,
            more: 0,
            // The overflow tally is a flood by definition: counted, never shown one by one.
            quiet: from == Source::Other,
        });
        if !tally.quiet && tally.shown < SHOWN {
            tally.shown += 1;
            true
        } else {
            tally.more += 1;
            false
        }
    }

    /// Ends the windows that are over at `now`: returns what each hid, and forgets the
    /// sources that went quiet.
    pub fn sweep(&self, now: Instant) -> Vec<Summary> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        tallies.retain(|&(kind, from), t| {
            if now.duration_since(t.since) < WINDOW {
                return true;
            }
            if t.more == 0 {
                return false;
            }
            out.push(Summary {
                kind,
                from,
                more: t.more,
            });
            *t = Tally {
                since: now,
                shown: 0,
                more: 0,
                quiet: true,
            };
            true
        });
        fold(out)
    }
}

/// Keeps the [`MAX_SUMMARIES`] largest summaries of each kind, folds the rest into one from
/// "other addresses", and orders them by kind, then largest first.
fn fold(mut all: Vec<Summary>) -> Vec<Summary> {
    all.sort_by(|a, b| a.kind.cmp(b.kind).then(b.more.cmp(&a.more)));
    let mut out: Vec<Summary> = Vec::new();
    let mut kept = 0;
    for s in all {
        kept = match out.last() {
            Some(last) if last.kind == s.kind => kept + 1,
            _ => 1,
        };
        if kept <= MAX_SUMMARIES && s.from != Source::Other {
            out.push(s);
            continue;
        }
        match out
            .iter_mut()
            .find(|o| o.kind == s.kind && o.from == Source::Other)
        {
            Some(other) => other.more += s.more,
            None => out.push(Summary {
                from: Source::Other,
                ..s
            }),
        }
    }
    out
}

static GLOBAL: LazyLock<Refusals> = LazyLock::new(Refusals::new);
static SWEEPER: Once = Once::new();

/// Logs that a connection from `peer` to `service` was refused (`kind` says how, e.g.
/// "handshake refused"; `error` why): the first [`SHOWN`] per kind and address in a window
/// as warnings of their own, the rest as one "N more refused from ADDR in the last 10 s"
/// line when the window ends. Every one is counted in the service's metrics, `kind` as
/// the reason.
pub fn refused(service: &'static str, kind: &'static str, peer: &Peer, error: &dyn fmt::Display) {
    crate::metrics::service(service).refused(kind);
    if note(kind, Source::from(peer)) {
        tracing::warn!(%peer, error = %error, "{kind}");
    }
}

/// Like [`refused`], for refusals that say more about the server's state than about the
/// peer (a handshake dropped because too many were in flight): tallied together for all
/// addresses, so a flood from many addresses is a few lines too.
pub fn refused_any(
    service: &'static str,
    kind: &'static str,
    peer: &Peer,
    error: &dyn fmt::Display,
) {
    crate::metrics::service(service).refused(kind);
    if note(kind, Source::Any) {
        tracing::warn!(%peer, error = %error, "{kind}");
    }
}

fn note(kind: &'static str, from: Source) -> bool {
    SWEEPER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("taojie-refusals".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    for s in GLOBAL.sweep(Instant::now()) {
                        tracing::warn!(kind = s.kind, more = s.more, "{s}");
                    }
                }
            });
    });
    GLOBAL.note(kind, from, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Source {
        Source::Ip(s.parse().unwrap())
    }

    #[test]
    fn the_first_few_show_then_one_summary_per_window_per_kind_and_address() {
        let r = Refusals::new();
        let t0 = Instant::now();
        let shown = (0..100)
            .filter(|_| r.note("handshake refused", ip("127.0.0.1"), t0))
            .count();
        assert_eq!(shown, SHOWN as usize);
        // Another address and another kind are tallied apart.
        assert!(r.note("handshake refused", ip("127.0.0.2"), t0));
        assert!(r.note("bad hello", ip("127.0.0.1"), t0));
        assert!(r.sweep(t0 + WINDOW / 2).is_empty());
        let s = r.sweep(t0 + WINDOW);
        assert_eq!(
            s,
            vec![Summary {
                kind: "handshake refused",
                from: ip("127.0.0.1"),
                more: 97
            }]
        );
        assert_eq!(
            s[0].to_string(),
            "97 more refused from 127.0.0.1 in the last 10 s (handshake refused)"
        );
        // The flood goes on: the next window shows nothing on its own, only its summary.
        let t1 = t0 + WINDOW;
        assert!(!r.note("handshake refused", ip("127.0.0.1"), t1));
        assert_eq!(r.sweep(t1 + WINDOW)[0].more, 1);
        // A quiet window forgets the address: a later refusal shows again.
        assert!(r.sweep(t1 + 2 * WINDOW).is_empty());
        assert!(r.note("handshake refused", ip("127.0.0.1"), t1 + 2 * WINDOW));
    }

    #[test]
    fn summaries_past_the_largest_few_fold_into_one() {
        let r = Refusals::new();
        let t0 = Instant::now();
        for i in 0..30u8 {
            for _ in 0..SHOWN + u32::from(i) + 1 {
                r.note("k", Source::Ip(IpAddr::from([127, 9, 0, i])), t0);
            }
        }
        let s = r.sweep(t0 + WINDOW);
        assert_eq!(s.len(), MAX_SUMMARIES + 1, "{s:?}");
        assert_eq!((s[0].from, s[0].more), (ip("127.9.0.29"), 30));
        // Addresses 0..=19 had 1..=20 more each.
        assert_eq!(
            (s[MAX_SUMMARIES].from, s[MAX_SUMMARIES].more),
            (Source::Other, 210)
        );
    }

    #[test]
    fn many_addresses_share_one_tally_past_the_table_capacity() {
        let r = Refusals::new();
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 + 500 {
            r.note("k", Source::Ip(IpAddr::from(i.to_be_bytes())), t0);
        }
        let s = r.sweep(t0 + WINDOW);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].from, s[0].more), (Source::Other, 500));
        assert!(s[0].to_string().contains("from other addresses"));
    }
}
