//! The members of the LAN this client has heard from: who they are, which encoding they
//! speak, and which of their packet numbers were already seen (a re-sent message is shown
//! once). The table is capped, so a flood of forged entries costs bounded memory: past the
//! cap the member heard from least recently is forgotten.
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde::Serialize;

use super::packet::{Packet, cmd, opt};
use super::text::Encoding;

/// Default cap on members remembered.
pub const DEFAULT_MAX_MEMBERS: usize = 4096;
/// Packet numbers remembered per member for spotting re-sent messages.
const RECENT: usize = 64;

/// One member of the LAN, as its packets describe it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Where its packets come from.
    pub addr: SocketAddr,
    /// Log-in name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Nickname (its entry's text), empty when it gave none.
    pub nick: String,
    /// Group, empty when it gave none.
    pub group: String,
    /// Its version field (client name and version, for `msg who`).
    pub version: String,
    /// The encoding it speaks, once declared or learned.
    pub encoding: Option<Encoding>,
    /// It said which encoding it speaks (learning from texts no longer changes it).
    #[serde(skip)]
    declared: bool,
    /// It understands UTF8OPT packets.
    pub utf8: bool,
    /// It announced itself with an entry from port 2425 (so it listens there).
    #[serde(skip)]
    pub on_port: bool,
    /// It only passes through (a `msg send` or `msg who`: its entry carried
    /// [`opt::NOADDLIST`]); not shown as a member of the LAN.
    #[serde(skip)]
    passing: bool,
    #[serde(skip)]
    last_seen: Instant,
    #[serde(skip)]
    recent: VecDeque<u64>,
}

impl Member {
    /// The name to show: the nickname, else the log-in name.
    pub fn name(&self) -> &str {
        if self.nick.is_empty() {
            &self.user
        } else {
            &self.nick
        }
    }

    /// The encoding to send to this member in: declared or learned, else UTF-8 for a peer
    /// that says it understands it, else GBK.
    pub fn send_encoding(&self) -> Encoding {
        match self.encoding {
            Some(e) => e,
            None if self.utf8 => Encoding::Utf8,
            None => Encoding::Gbk,
        }
    }
}

/// The members heard from, keyed by IP address (as IP Messenger and iptux key them).
#[derive(Debug)]
pub struct Members {
    map: HashMap<IpAddr, Member>,
    max: usize,
}

impl Members {
    /// An empty table holding at most `max` members.
    pub fn new(max: usize) -> Self {
        Members {
            map: HashMap::new(),
            max: max.max(1),
        }
    }

    /// The encoding to read `p` from `from` in.
    pub fn decoding(&self, from: SocketAddr, p: &Packet<'_>) -> Encoding {
        if p.has(opt::UTF8) {
            return Encoding::Utf8;
        }
        match self.map.get(&from.ip()).and_then(|m| m.encoding) {
            // A peer that speaks UTF-8 may still send GBK to a peer that asked for it (without
            // UTF8OPT); bytes that are not UTF-8 can only be GBK.
            Some(Encoding::Utf8) if !is_utf8(p) => return Encoding::Gbk,
            Some(e) => return e,
            None => {}
        }
        Encoding::guess(p.user)
            .or_else(|| Encoding::guess(p.host))
            .or_else(|| Encoding::guess(p.extra))
            .unwrap_or(Encoding::Gbk)
    }

    /// Takes in an entry, an answer to one or an absence change; returns the member and
    /// whether it is new to the table. A BR_ENTRY means the peer (re)started, and restarted
    /// peers count packet numbers from scratch, so what was seen of it is forgotten.
    pub fn entry(&mut self, from: SocketAddr, p: &Packet<'_>) -> (Member, bool) {
        let enc = self.decoding(from, p);
        let fields = p.fields();
        let declared = fields.get(2).and_then(|f| Encoding::from_label(f));
        let is_new = !self.map.contains_key(&from.ip());
        let m = self.upsert(from, p, enc);
        // Entries say where a member listens; a message may come from any port.
        m.addr = from;
        m.nick = enc.decode(p.text());
        m.group = fields.first().map(|g| enc.decode(g)).unwrap_or_default();
        m.utf8 = p.has(opt::CAPUTF8) || p.has(opt::UTF8);
        m.on_port = from.port() == super::packet::PORT;
        if let Some(d) = declared {
            m.encoding = Some(d);
            m.declared = true;
        }
        if p.kind() == cmd::BR_ENTRY {
            m.recent.clear();
        }
        m.passing = false;
        (m.clone(), is_new)
    }

    /// Takes in the entry or answer of a member passing through ([`opt::NOADDLIST`]): its
    /// name and encoding are kept for the message that follows, but a member known at that
    /// address (another program of the same host) is left as it is.
    pub fn passing(&mut self, from: SocketAddr, p: &Packet<'_>) {
        if self.map.get(&from.ip()).is_some_and(|m| !m.passing) {
            return;
        }
        self.entry(from, p);
        if let Some(m) = self.map.get_mut(&from.ip()) {
            m.passing = true;
        }
    }

    /// Forgets a member passing through that said goodbye; another member at that address
    /// stays.
    pub fn passed(&mut self, ip: IpAddr) {
        if self.map.get(&ip).is_some_and(|m| m.passing) {
            self.map.remove(&ip);
        }
    }

    /// Takes in a message: returns the sender (added if it was unknown) and whether this
    /// packet number is new from it (false for a re-sent copy).
    pub fn message(&mut self, from: SocketAddr, p: &Packet<'_>) -> (Member, bool) {
        let enc = self.decoding(from, p);
        let m = self.upsert(from, p, enc);
        if !m.declared && !p.has(opt::UTF8) && m.encoding.is_none() {
            m.encoding = Encoding::guess(p.text());
        }
        let fresh = !m.recent.contains(&p.number);
        if fresh {
            if m.recent.len() == RECENT {
                m.recent.pop_front();
            }
            m.recent.push_back(p.number);
        }
        (m.clone(), fresh)
    }

    /// Forgets the member at `ip` (it said BR_EXIT).
    pub fn exit(&mut self, ip: IpAddr) -> Option<Member> {
        self.map.remove(&ip)
    }

    /// The member at `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<&Member> {
        self.map.get(&ip)
    }

    /// Members whose nickname or log-in name is `name`.
    pub fn named(&self, name: &str) -> Vec<Member> {
        self.map
            .values()
            .filter(|m| !m.passing && (m.nick == name || m.user == name))
            .cloned()
            .collect()
    }

    /// Every member (not those passing through), by name.
    pub fn all(&self) -> Vec<Member> {
        let mut all: Vec<Member> = self.map.values().filter(|m| !m.passing).cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()).then(a.addr.cmp(&b.addr)));
        all
    }

    /// How many members are known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no member is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn upsert(&mut self, from: SocketAddr, p: &Packet<'_>, enc: Encoding) -> &mut Member {
        if !self.map.contains_key(&from.ip()) && self.map.len() >= self.max {
            let oldest = self
                .map
                .values()
                .min_by_key(|m| m.last_seen)
                .map(|m| m.addr);
            if let Some(old) = oldest {
                self.map.remove(&old.ip());
            }
        }
        let m = self.map.entry(from.ip()).or_insert_with(|| Member {
            addr: from,
            user: String::new(),
            host: String::new(),
            nick: String::new(),
            group: String::new(),
            version: String::new(),
            encoding: None,
            declared: false,
            utf8: false,
            on_port: false,
            passing: false,
            last_seen: Instant::now(),
            recent: VecDeque::new(),
        });
        m.user = enc.decode(p.user);
        m.host = enc.decode(p.host);
        m.version = String::from_utf8_lossy(p.version).into_owned();
        m.last_seen = Instant::now();
        m
    }
}

/// Whether the names, text and extra fields of `p` are all valid UTF-8.
fn is_utf8(p: &Packet<'_>) -> bool {
    [p.user, p.host, p.extra]
        .iter()
        .all(|b| std::str::from_utf8(b).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 2425))
    }

    #[test]
    fn a_member_passing_through_is_remembered_but_not_listed() {
        let mut t = Members::new(10);
        let passing = Packet::parse(b"1:7:cat:box:524289:cat\0\0\0utf-8\0").unwrap();
        t.passing(at(3), &passing);
        assert!(t.all().is_empty() && t.named("cat").is_empty());
        assert_eq!(t.get(at(3).ip()).map(|m| m.nick.as_str()), Some("cat"));
        t.passed(at(3).ip());
        assert!(t.get(at(3).ip()).is_none());
        // A member of the same address stays as it was, and is not forgotten.
        let entry = Packet::parse(b"1:8:ann:box:1:Ann\0\0\0utf-8\0").unwrap();
        t.entry(at(1), &entry);
        t.passing(at(1), &passing);
        t.passed(at(1).ip());
        assert_eq!(t.named("Ann").len(), 1);
    }

    #[test]
    fn declared_encoding_wins_and_resent_messages_are_seen_once() {
        let mut t = Members::new(10);
        let entry = Packet::parse(b"1_iptux 0.8.3:1:ann:box:257:Ann\0dev\0\0utf-8\0").unwrap();
        let (m, new) = t.entry(at(1), &entry);
        assert!(new);
        assert_eq!((m.nick.as_str(), m.group.as_str()), ("Ann", "dev"));
        assert_eq!(m.send_encoding(), Encoding::Utf8);
        let msg = Packet::parse(b"1_iptux 0.8.3:2:ann:box:288:hi").unwrap();
        assert!(t.message(at(1), &msg).1);
        assert!(!t.message(at(1), &msg).1);
        // The peer restarts: numbers start again and the same number is news.
        t.entry(at(1), &entry);
        assert!(t.message(at(1), &msg).1);
    }

    #[test]
    fn undeclared_peers_are_learned_from_their_first_text() {
        let mut t = Members::new(10);
        let gbk = [b"1_lbt4_10#1#2#0#0#0:9:u:h:288:".as_slice(), &[0xc4, 0xe3]].concat();
        let p = Packet::parse(&gbk).unwrap();
        let (m, _) = t.message(at(2), &p);
        assert_eq!(m.encoding, Some(Encoding::Gbk));
        assert_eq!(t.decoding(at(2), &p).decode(p.text()), "你");
    }

    #[test]
    fn the_table_is_capped() {
        let mut t = Members::new(3);
        let p = Packet::parse(b"1:1:u:h:1:n").unwrap();
        for i in 1..=10 {
            t.entry(at(i), &p);
        }
        assert_eq!(t.len(), 3);
        assert!(t.get(at(10).ip()).is_some());
    }
}
