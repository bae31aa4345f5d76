//! The mailbox server's state, in memory: per application, nameplates (short numbers that
//! point at a mailbox, claimed by at most two sides) and mailboxes (the messages both sides
//! added, kept for whoever opens later, and pushed at once to those listening). All of it
//! behind one lock, held only for the few map operations of one command.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::sync::Notify;

use super::HubLimits;

/// The most frames queued for one connection; a listener that lets more pile up is dropped.
const OUTBOX_MAX: usize = 256;

/// A connection's queue of outgoing frames (serialized JSON): the hub pushes, the connection
/// pops. An empty queue holds no allocation (ten thousand idle clients each have one).
#[derive(Default)]
pub struct Outbox {
    queue: Mutex<std::collections::VecDeque<Arc<str>>>,
    ready: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Outbox {
    /// Queues `frame`; false, and the queue closed, when it is full.
    pub fn push(&self, frame: Arc<str>) -> bool {
        use std::sync::atomic::Ordering;
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ok = q.len() < OUTBOX_MAX && !self.closed.load(Ordering::Relaxed);
        if ok {
            q.push_back(frame);
        } else {
            self.closed.store(true, Ordering::Relaxed);
        }
        drop(q);
        self.ready.notify_one();
        ok
    }

    /// The next frame; `None` once the queue was closed (and emptied).
    pub async fn pop(&self) -> Option<Arc<str>> {
        loop {
            {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = q.pop_front() {
                    return Some(f);
                }
                if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
            }
            // notify_one keeps a permit when nobody waits, so a push between the check above
            // and this wait is not missed.
            self.ready.notified().await;
        }
    }
}

/// Why a command is refused; the text goes to the client in an `error` message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// A third side.
    #[error("crowded")]
    Crowded,
    /// A side claimed again what it released.
    #[error("reclaimed")]
    Reclaimed,
    /// A malformed nameplate.
    #[error("invalid nameplate")]
    BadNameplate,
    /// No nameplate left.
    #[error("no free nameplate")]
    Full,
    /// The client's address holds too many channels.
    #[error("too many channels from your address")]
    TooManyChannels,
    /// The mailbox holds too much.
    #[error("mailbox full")]
    MailboxFull,
}

struct Nameplate {
    mailbox: String,
    /// (side, still claimed)
    sides: Vec<(String, bool)>,
}

struct Mailbox {
    /// (side, still open)
    sides: Vec<(String, bool)>,
    messages: Vec<Arc<str>>,
    bytes: usize,
    listeners: Vec<(u64, Arc<Outbox>)>,
    updated: Instant,
    owner: IpAddr,
}

#[derive(Default)]
struct App {
    nameplates: HashMap<String, Nameplate>,
    mailboxes: HashMap<String, Mailbox>,
}

#[derive(Default)]
struct Inner {
    apps: HashMap<String, App>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The whole mailbox server's state.
pub struct Hub {
    inner: Mutex<Inner>,
    limits: HubLimits,
}

fn random_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the system's random source");
    crate::wormhole::messages::hex(&b)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn check_nameplate(n: &str) -> Result<(), Refused> {
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Refused::BadNameplate);
    }
    Ok(())
}

impl Inner {
    fn drop_mailbox(&mut self, app: &str, id: &str) {
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        if let Some(m) = a.mailboxes.remove(id)
            && let Some(n) = self.per_ip.get_mut(&m.owner)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&m.owner);
            }
        }
        a.nameplates.retain(|_, n| n.mailbox != id);
        if a.nameplates.is_empty() && a.mailboxes.is_empty() {
            self.apps.remove(app);
        }
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: HubLimits) -> Arc<Hub> {
        Arc::new(Hub {
            inner: Mutex::new(Inner::default()),
            limits,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nameplates in use by `app`.
    pub fn list(&self, app: &str) -> Vec<String> {
        let g = self.lock();
        g.apps
            .get(app)
            .map(|a| a.nameplates.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A free nameplate, as short as possible (1-999 first), claimed for `side`.
    pub fn allocate(&self, app: &str, side: &str, ip: IpAddr) -> Result<String, Refused> {
        let name = {
            let g = self.lock();
            let used = g.apps.get(app).map(|a| &a.nameplates);
            let free = |n: &u64| used.is_none_or(|u| !u.contains_key(&n.to_string()));
            let mut pick = None;
            for digits in 1..=3u32 {
                let (lo, hi) = (10u64.pow(digits - 1), 10u64.pow(digits));
                let avail: Vec<u64> = (lo..hi).filter(free).collect();
                if !avail.is_empty() {
                    let mut r = [0u8; 8];
                    getrandom::fill(&mut r).expect("the system's random source");
                    pick = Some(avail[(u64::from_le_bytes(r) % avail.len() as u64) as usize]);
                    break;
                }
            }
            if pick.is_none() {
                for _ in 0..1000 {
                    let mut r = [0u8; 8];
                    getrandom::fill(&mut r).expect("the system's random source");
                    let n = 1000 + u64::from_le_bytes(r) % 999_000;
                    if free(&n) {
                        pick = Some(n);
                        break;
                    }
                }
            }
            pick.ok_or(Refused::Full)?.to_string()
        };
        self.claim(app, &name, side, ip)?;
        Ok(name)
    }

    /// Claims `name` for `side` (creating it and its mailbox if new); returns the mailbox.
    pub fn claim(&self, app: &str, name: &str, side: &str, ip: IpAddr) -> Result<String, Refused> {
        check_nameplate(name)?;
        let mut g = self.lock();
        let existing = g
            .apps
            .get(app)
            .and_then(|a| a.nameplates.get(name))
            .map(|n| n.mailbox.clone());
        let mailbox = match existing {
            Some(m) => m,
            None => {
                let id = random_id();
                self.create_mailbox(&mut g, app, &id, ip)?;
                let a = g.apps.entry(app.to_string()).or_default();
                a.nameplates.insert(
                    name.to_string(),
                    Nameplate {
                        mailbox: id.clone(),
                        sides: Vec::new(),
                    },
                );
                id
            }
        };
        let a = g.apps.get_mut(app).expect("made above");
        let np = a.nameplates.get_mut(name).expect("made above");
        match np.sides.iter().find(|(s, _)| s == side) {
            Some((_, false)) => return Err(Refused::Reclaimed),
            Some((_, true)) => {}
            None if np.sides.len() >= 2 => return Err(Refused::Crowded),
            None => np.sides.push((side.to_string(), true)),
        }
        Self::add_side(
            a.mailboxes
                .get_mut(&mailbox)
                .expect("nameplates point at mailboxes"),
            side,
        )?;
        Ok(mailbox)
    }

    fn create_mailbox(
        &self,
        g: &mut Inner,
        app: &str,
        id: &str,
        ip: IpAddr,
    ) -> Result<(), Refused> {
        let n = g.per_ip.entry(ip).or_default();
        if *n >= self.limits.channels_per_client {
            return Err(Refused::TooManyChannels);
        }
        *n += 1;
        g.apps.entry(app.to_string()).or_default().mailboxes.insert(
            id.to_string(),
            Mailbox {
                sides: Vec::new(),
                messages: Vec::new(),
                bytes: 0,
                listeners: Vec::new(),
                updated: Instant::now(),
                owner: ip,
            },
        );
        Ok(())
    }

    fn add_side(m: &mut Mailbox, side: &str) -> Result<(), Refused> {
        let full = m.sides.len() >= 2;
        match m.sides.iter_mut().find(|(s, _)| s == side) {
            // Re-opening after a close is allowed (a client unsure its close arrived).
            Some(entry) => entry.1 = true,
            None if full => return Err(Refused::Crowded),
            None => m.sides.push((side.to_string(), true)),
        }
        m.updated = Instant::now();
        Ok(())
    }

    /// Releases `side`'s claim; the nameplate goes when no side claims it.
    pub fn release(&self, app: &str, name: &str, side: &str) {
        let mut g = self.lock();
        let Some(a) = g.apps.get_mut(app) else { return };
        if let Some(np) = a.nameplates.get_mut(name) {
            for s in np.sides.iter_mut().filter(|(s, _)| s == side) {
                s.1 = false;
            }
            if np.sides.iter().all(|(_, claimed)| !claimed) {
                a.nameplates.remove(name);
            }
        }
    }

    /// Opens `mailbox` for `side` with `listener` subscribed; returns what it holds.
    pub fn open(
        &self,
        app: &str,
        mailbox: &str,
        side: &str,
        ip: IpAddr,
        listener: (u64, Arc<Outbox>),
    ) -> Result<Vec<Arc<str>>, Refused> {
        let mut g = self.lock();
        if !g
            .apps
            .get(app)
            .is_some_and(|a| a.mailboxes.contains_key(mailbox))
        {
            check_nameplate(mailbox)?;
            self.create_mailbox(&mut g, app, mailbox, ip)?;
        }
        let m = g
            .apps
            .get_mut(app)
            .and_then(|a| a.mailboxes.get_mut(mailbox))
            .expect("made above");
        Self::add_side(m, side)?;
        m.listeners.retain(|(id, _)| *id != listener.0);
        m.listeners.push(listener);
        Ok(m.messages.clone())
    }

    /// Adds a message and pushes it to every listener (the sender's own echo included).
    pub fn add(
        &self,
        app: &str,
        mailbox: &str,
        side: &str,
        phase: &str,
        body: &str,
        id: &serde_json::Value,
    ) -> Result<(), Refused> {
        let mut g = self.lock();
        let Some(m) = g
            .apps
            .get_mut(app)
            .and_then(|a| a.mailboxes.get_mut(mailbox))
        else {
            return Ok(());
        };
        let t = now_secs();
        let frame: Arc<str> = json!({"type": "message", "side": side, "phase": phase, "body": body,
            "id": id, "server_rx": t, "server_tx": t})
        .to_string()
        .into();
        if m.messages.len() >= self.limits.mailbox_messages
            || m.bytes + frame.len() > self.limits.mailbox_bytes
        {
            return Err(Refused::MailboxFull);
        }
        m.bytes += frame.len();
        m.messages.push(frame.clone());
        m.updated = Instant::now();
        // A listener whose queue is full is too slow to keep: it is dropped from the mailbox
        // (its connection notices its queue closed and ends).
        m.listeners.retain(|(_, out)| out.push(frame.clone()));
        Ok(())
    }

    /// Closes `side`'s use of `mailbox`; the mailbox (and any nameplate on it) goes once
    /// every side has closed.
    pub fn close(&self, app: &str, mailbox: &str, side: &str, listener: u64) {
        let mut g = self.lock();
        let Some(m) = g
            .apps
            .get_mut(app)
            .and_then(|a| a.mailboxes.get_mut(mailbox))
        else {
            return;
        };
        m.listeners.retain(|(id, _)| *id != listener);
        for s in m.sides.iter_mut().filter(|(s, _)| s == side) {
            s.1 = false;
        }
        if m.sides.iter().all(|(_, open)| !open) {
            g.drop_mailbox(app, mailbox);
        }
    }

    /// Unsubscribes a connection that went away (its side stays: it may come back).
    pub fn disconnect(&self, app: &str, mailbox: &str, listener: u64) {
        let mut g = self.lock();
        if let Some(m) = g
            .apps
            .get_mut(app)
            .and_then(|a| a.mailboxes.get_mut(mailbox))
        {
            m.listeners.retain(|(id, _)| *id != listener);
            m.updated = Instant::now();
        }
    }

    /// Removes the channels nobody listens to that have been idle for `idle`; returns how
    /// many mailboxes went.
    pub fn prune(&self, idle: Duration) -> usize {
        let mut g = self.lock();
        let now = Instant::now();
        let old: Vec<(String, String)> = g
            .apps
            .iter()
            .flat_map(|(app, a)| {
                a.mailboxes
                    .iter()
                    .filter(|(_, m)| {
                        m.listeners.is_empty() && now.duration_since(m.updated) >= idle
                    })
                    .map(move |(id, _)| (app.clone(), id.clone()))
            })
            .collect();
        for (app, id) in &old {
            g.drop_mailbox(app, id);
        }
        old.len()
    }

    /// Mailboxes held now (all applications).
    pub fn mailboxes(&self) -> usize {
        self.lock().apps.values().map(|a| a.mailboxes.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<Hub> {
        Hub::new(HubLimits {
            channels_per_client: 3,
            mailbox_messages: 4,
            mailbox_bytes: 4096,
        })
    }
    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn allocation_is_short_and_a_third_side_is_crowded() {
        let h = hub();
        let n = h.allocate("a", "s1", IP).unwrap();
        assert!(n.len() == 1 && n != "0", "{n}");
        let m1 = h.claim("a", &n, "s1", IP).unwrap();
        assert_eq!(h.claim("a", &n, "s2", IP).unwrap(), m1);
        assert_eq!(h.claim("a", &n, "s3", IP), Err(Refused::Crowded));
        // Another app has its own nameplates.
        assert_ne!(h.claim("b", &n, "s1", IP).unwrap(), m1);
        h.release("a", &n, "s1");
        assert_eq!(h.claim("a", &n, "s1", IP), Err(Refused::Reclaimed));
        h.release("a", &n, "s2");
        assert!(h.list("a").is_empty());
    }

    #[test]
    fn messages_reach_listeners_and_late_openers() {
        let h = hub();
        let m = h.claim("a", "7", "s1", IP).unwrap();
        let out = Arc::new(Outbox::default());
        assert!(
            h.open("a", &m, "s1", IP, (1, out.clone()))
                .unwrap()
                .is_empty()
        );
        h.add("a", &m, "s1", "pake", "00", &json!("x")).unwrap();
        let got = out.queue.lock().unwrap().pop_front().unwrap();
        assert!(got.contains("\"phase\":\"pake\""));
        let tx2 = Arc::new(Outbox::default());
        assert_eq!(h.open("a", &m, "s2", IP, (2, tx2)).unwrap().len(), 1);
        for _ in 0..3 {
            h.add("a", &m, "s2", "0", "11", &json!(null)).unwrap();
        }
        assert_eq!(
            h.add("a", &m, "s2", "0", "11", &json!(null)),
            Err(Refused::MailboxFull)
        );
        h.close("a", &m, "s1", 1);
        assert_eq!(h.mailboxes(), 1);
        h.close("a", &m, "s2", 2);
        assert_eq!(h.mailboxes(), 0);
    }

    #[test]
    fn channels_per_client_and_expiry() {
        let h = hub();
        for n in ["1", "2", "3"] {
            h.claim("a", n, "s", IP).unwrap();
        }
        assert_eq!(h.claim("a", "4", "s", IP), Err(Refused::TooManyChannels));
        assert_eq!(h.prune(Duration::ZERO), 3);
        assert!(h.list("a").is_empty());
        h.claim("a", "4", "s", IP).unwrap();
        assert_eq!(h.claim("a", "../x", "s", IP), Err(Refused::BadNameplate));
    }
}
