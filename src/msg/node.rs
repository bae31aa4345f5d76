//! One member of an IP Messenger LAN: the UDP socket, the receive loop that answers entries,
//! acknowledges messages and keeps the member table, and sending with acknowledgement.
//!
//! Every `msg` subcommand runs one [`Node`]; what it hears comes out as [`Event`]s.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::attach::{self, Attachment};
use super::members::{Member, Members};
use super::packet::{self, Numbers, PORT, Packet, cmd, opt};
use super::text::Encoding;
use crate::server::{Datagrams, PerSource};

/// Tries a message is sent before it counts as not delivered, a second apart (as IP
/// Messenger and iptux do).
pub const TRIES: u32 = 4;
/// Wait for an acknowledgement after each try.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Answers to entries per second at most: a flood of forged entries must not turn this
/// member into a reflector.
const ANSWERS_PER_SEC: u32 = 200;
/// Answers (to entries, information requests and messages) a second to one address, after a
/// burst of [`ANSWER_BURST`]: a source address can be forged, and each answer would go to it.
const ANSWERS_PER_SOURCE: f64 = 10.0;
/// Answers one address may have at once.
const ANSWER_BURST: f64 = 20.0;
/// An information answer or an acknowledgement is at most this many bytes larger than what
/// it answers (our names may be longer than the asker's), so a forged request reflects about
/// its own size: a bare 11-byte request gets nothing.
const ANSWER_SLACK: usize = 16;

/// Who this member says it is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Log-in name and nickname (IP Messenger shows the nickname).
    pub name: String,
    /// Group.
    pub group: String,
    /// Host name.
    pub host: String,
    /// The encoding this member speaks: written in its entries, so peers send it this.
    pub encoding: Encoding,
    /// Only passing through (`msg send`, `msg who`): its entries, answers and exits carry
    /// [`opt::NOADDLIST`], so listeners answer it without announcing it.
    pub passing: bool,
}

/// Something heard on the LAN.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message (shown once, however often it was re-sent).
    Message(Message),
    /// A member announced itself, or answered our entry for the first time.
    Entry(Member),
    /// A member left.
    Exit(Member),
}

/// A message received.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its sender, as the member table knows it.
    pub from: Member,
    /// The address it came from.
    pub addr: SocketAddr,
    /// Its packet number.
    pub number: u64,
    /// The text, decoded (not yet neutralised).
    pub text: String,
    /// Files attached to it.
    pub files: Vec<Attachment>,
    /// Sent to everyone rather than to us alone.
    pub broadcast: bool,
}

/// A running member: its socket and what it knows.
pub struct Node {
    socket: UdpSocket,
    me: Identity,
    numbers: Numbers,
    members: Mutex<Members>,
    pending: Mutex<HashMap<u64, (IpAddr, oneshot::Sender<()>)>>,
    broadcast: Vec<SocketAddr>,
    answers: Mutex<(Instant, u32)>,
    per_source: Mutex<PerSource>,
    /// A broadcast failed and the user was told (once is enough).
    told_broadcast_failed: AtomicBool,
}

/// Binds a UDP socket without SO_REUSEADDR (so a second member on the same port is an error,
/// not a silent split of the traffic), with broadcast allowed.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl Node {
    /// A member on `socket`, announcing itself to `broadcast`; its receive loop runs until
    /// `stop` is cancelled and hands what it hears to the returned channel.
    pub fn start(
        socket: UdpSocket,
        me: Identity,
        broadcast: Vec<SocketAddr>,
        max_members: usize,
        stop: CancellationToken,
    ) -> (Arc<Node>, mpsc::Receiver<Event>) {
        let node = Arc::new(Node {
            socket,
            me,
            numbers: Numbers::from_clock(),
            members: Mutex::new(Members::new(max_members)),
            pending: Mutex::new(HashMap::new()),
            broadcast,
            answers: Mutex::new((Instant::now(), 0)),
            per_source: Mutex::new(PerSource::new(ANSWERS_PER_SOURCE, ANSWER_BURST)),
            told_broadcast_failed: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(256);
        let looping = node.clone();
        tokio::spawn(async move {
            let mut incoming = Datagrams::new("msg", &looping.socket, stop.cancelled_owned());
            while let Some((data, from)) = incoming.next().await {
                for event in looping.handle(data, from).await {
                    // Nobody listening (a sender that only waits for its ack) is fine.
                    let _ = tx.send(event).await;
                }
            }
        });
        (node, rx)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Who this member says it is.
    pub fn identity(&self) -> &Identity {
        &self.me
    }

    /// Every member heard from, by name.
    pub fn members(&self) -> Vec<Member> {
        self.lock_members().all()
    }

    /// Members whose nickname or log-in name is `name`.
    pub fn named(&self, name: &str) -> Vec<Member> {
        self.lock_members().named(name)
    }

    /// The member at `ip`, if heard from.
    pub fn member(&self, ip: IpAddr) -> Option<Member> {
        self.lock_members().get(ip).cloned()
    }

    /// A fresh packet number.
    pub fn next_number(&self) -> u64 {
        self.numbers.next()
    }

    /// Says BR_ENTRY to every broadcast address (and `also`, one by one).
    pub async fn announce(&self, also: &[SocketAddr]) {
        let pkt = self.entry_packet(cmd::BR_ENTRY);
        self.broadcast(&pkt).await;
        for to in also {
            self.send_raw(&pkt, *to).await;
        }
    }

    /// Sends `pkt` to every broadcast address. The first that fails (no route to
    /// 255.255.255.255 on a host with no default route, say) is said once, at info: peers
    /// there will not hear of us, which the user should know without being told again.
    async fn broadcast(&self, pkt: &[u8]) {
        for to in &self.broadcast {
            match self.socket.send_to(pkt, to).await {
                Ok(_) => {}
                Err(e) if !self.told_broadcast_failed.swap(true, Ordering::Relaxed) => info!(
                    "cannot broadcast to {to}: {e}; members reached only through it will not \
                     hear of this one (--broadcast names the addresses to use)"
                ),
                Err(e) => debug!(%to, error = %e, "broadcast failed"),
            }
        }
    }

    /// Says BR_ENTRY to one host (it lists us, answers, and restarts its count of our
    /// packet numbers).
    pub async fn announce_to(&self, to: SocketAddr) {
        let pkt = self.entry_packet(cmd::BR_ENTRY);
        self.send_raw(&pkt, to).await;
    }

    /// Says BR_EXIT to one host.
    pub async fn exit_to(&self, to: SocketAddr) {
        let pkt = self.exit_packet();
        self.send_raw(&pkt, to).await;
    }

    /// Says BR_EXIT to every broadcast address and to every member heard from (a broadcast
    /// may not reach all of them).
    pub async fn leave(&self) {
        let pkt = self.exit_packet();
        let members: Vec<SocketAddr> = self.members().iter().map(|m| m.addr).collect();
        self.broadcast(&pkt).await;
        for to in &members {
            self.send_raw(&pkt, *to).await;
        }
    }

    /// Sends `text` (and the attachment list `files`, already encoded by [`attach`]) to `to`
    /// with SENDCHECKOPT, re-sending it up to [`TRIES`] times a second apart until `to`
    /// acknowledges it; returns the packet number, or an error when no acknowledgement came.
    pub async fn send_message(
        &self,
        to: SocketAddr,
        text: &str,
        files: Option<(u64, &[u8])>,
        enc: Encoding,
    ) -> Result<u64> {
        let (number, list) = match files {
            Some((n, list)) => (n, list),
            None => (self.next_number(), &[][..]),
        };
        let mut command = cmd::SENDMSG | opt::SENDCHECK;
        if enc == Encoding::Utf8 {
            command |= opt::UTF8;
        }
        let mut extra = enc.encode(text);
        extra.push(0);
        if !list.is_empty() {
            command |= opt::FILEATTACH;
            extra.extend_from_slice(list);
            extra.push(0);
        }
        let pkt = self.build_numbered(number, command, enc, &extra);
        if pkt.len() > packet::MAX_PACKET {
            anyhow::bail!(
                "the message is {} bytes on the wire; IP Messenger peers take at most {}",
                pkt.len(),
                packet::MAX_PACKET
            );
        }
        let (tx, mut rx) = oneshot::channel();
        self.lock_pending().insert(number, (to.ip(), tx));
        for _ in 0..TRIES {
            self.socket
                .send_to(&pkt, to)
                .await
                .with_context(|| format!("send to {to}"))?;
            if tokio::time::timeout(RETRY_EVERY, &mut rx).await.is_ok() {
                return Ok(number);
            }
        }
        self.lock_pending().remove(&number);
        anyhow::bail!(
            "{to} did not acknowledge the message ({TRIES} tries, {}s apart)",
            RETRY_EVERY.as_secs()
        )
    }

    /// Handles one datagram; returns what the user should hear of it.
    async fn handle(&self, data: &[u8], from: SocketAddr) -> Vec<Event> {
        let p = match Packet::parse(data) {
            Ok(p) => p,
            Err(e) => {
                debug!(%from, error = %e, len = data.len(), "dropped a datagram");
                return Vec::new();
            }
        };
        if p.user.contains(&0) || p.host.contains(&0) {
            debug!(%from, "dropped a packet with NUL in its names");
            return Vec::new();
        }
        // A member passing through is answered and remembered (its name, its encoding) but
        // not announced: no entry, no exit.
        let passing = p.has(opt::NOADDLIST);
        match p.kind() {
            cmd::BR_ENTRY | cmd::ANSENTRY if passing => {
                self.lock_members().passing(from, &p);
                if p.kind() == cmd::BR_ENTRY && self.may_answer() && self.may_answer_to(from) {
                    let pkt = self.entry_packet(cmd::ANSENTRY);
                    self.send_raw(&pkt, from).await;
                }
                Vec::new()
            }
            cmd::BR_EXIT if passing => {
                self.lock_members().passed(from.ip());
                Vec::new()
            }
            cmd::BR_ENTRY => {
                let (m, _) = self.lock_members().entry(from, &p);
                if self.may_answer() && self.may_answer_to(from) {
                    let pkt = self.entry_packet(cmd::ANSENTRY);
                    self.send_raw(&pkt, from).await;
                }
                vec![Event::Entry(m)]
            }
            cmd::ANSENTRY | cmd::BR_ABSENCE => {
                let (m, new) = self.lock_members().entry(from, &p);
                if new {
                    vec![Event::Entry(m)]
                } else {
                    Vec::new()
                }
            }
            cmd::BR_EXIT => self
                .lock_members()
                .exit(from.ip())
                .map(Event::Exit)
                .into_iter()
                .collect(),
            cmd::SENDMSG => self.on_message(&p, data.len(), from).await,
            cmd::RECVMSG => {
                self.on_ack(&p, from);
                Vec::new()
            }
            cmd::GETINFO => {
                let text = format!("taojie {}\0", env!("CARGO_PKG_VERSION"));
                self.answer_info(cmd::SENDINFO, text.as_bytes(), data.len(), from)
                    .await;
                Vec::new()
            }
            cmd::GETABSENCEINFO => {
                let text = b"Not absence mode\0";
                self.answer_info(cmd::SENDABSENCEINFO, text, data.len(), from)
                    .await;
                Vec::new()
            }
            other => {
                debug!(%from, command = other, "ignored a command");
                Vec::new()
            }
        }
    }

    /// Answers an information request of `asked` bytes with `text`, cut short (or left out)
    /// so the answer is at most [`ANSWER_SLACK`] bytes larger than the request.
    async fn answer_info(&self, command: u32, text: &[u8], asked: usize, from: SocketAddr) {
        let fits = |pkt: &Vec<u8>| pkt.len() <= asked + ANSWER_SLACK;
        let pkt = Some(self.build(command, Encoding::Utf8, text))
            .filter(fits)
            .or_else(|| Some(self.build(command, Encoding::Utf8, b"\0")).filter(fits));
        match pkt {
            Some(pkt) if self.may_answer_to(from) => self.send_raw(&pkt, from).await,
            Some(_) => {}
            None => debug!(%from, asked, "an information request too small to answer"),
        }
    }

    async fn on_message(&self, p: &Packet<'_>, len: usize, from: SocketAddr) -> Vec<Event> {
        let (member, fresh) = self.lock_members().message(from, p);
        if p.has(opt::SENDCHECK) {
            let ack = self.build(
                cmd::RECVMSG,
                member.send_encoding(),
                format!("{}\0", p.number).as_bytes(),
            );
            if ack.len() > len + ANSWER_SLACK {
                debug!(%from, len, "a message too small to acknowledge (forged?)");
            } else if self.may_answer_to(from) {
                self.send_raw(&ack, from).await;
                // iptux answers and listens on port 2425 only, whatever port it sent from.
                if from.port() != PORT && member.on_port {
                    self.send_raw(&ack, SocketAddr::new(from.ip(), PORT)).await;
                }
            }
        }
        if !fresh {
            debug!(%from, number = p.number, "a re-sent message, acknowledged again");
            return Vec::new();
        }
        let enc = self.lock_members().decoding(from, p);
        let files = if p.has(opt::FILEATTACH) {
            attach::parse_list(p.fields().first().copied().unwrap_or_default(), enc)
        } else {
            Vec::new()
        };
        vec![Event::Message(Message {
            from: member,
            addr: from,
            number: p.number,
            text: enc.decode(p.text()),
            files,
            broadcast: p.has(opt::BROADCAST),
        })]
    }

    fn on_ack(&self, p: &Packet<'_>, from: SocketAddr) {
        let number = std::str::from_utf8(p.text())
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mut pending = self.lock_pending();
        match number.and_then(|n| pending.get(&n).map(|(ip, _)| (n, *ip))) {
            Some((n, ip)) if ip == from.ip() => {
                if let Some((_, done)) = pending.remove(&n) {
                    let _ = done.send(());
                }
            }
            _ => debug!(%from, "an acknowledgement of nothing we are waiting for"),
        }
    }

    /// Whether one more answer to an entry fits in this second's budget.
    fn may_answer(&self) -> bool {
        let mut a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if a.0.elapsed() >= Duration::from_secs(1) {
            *a = (Instant::now(), 0);
        }
        a.1 += 1;
        a.1 <= ANSWERS_PER_SEC
    }

    /// Whether `from`'s address may have one more answer now.
    fn may_answer_to(&self, from: SocketAddr) -> bool {
        let mut limit = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        let ok = limit.allow(from.ip(), Instant::now());
        if !ok {
            debug!(%from, "over the answers a second for one address; not answered");
        }
        ok
    }

    /// An entry or an answer to one: `nick\0group\0icon\0encoding\0`, in our own encoding
    /// and naming it, so peers (iptux among them) talk to us in it.
    fn entry_packet(&self, kind: u32) -> Vec<u8> {
        let enc = self.me.encoding;
        let mut extra = enc.encode(&self.me.name);
        extra.push(0);
        extra.extend(enc.encode(&self.me.group));
        let label: &[u8] = match enc {
            Encoding::Utf8 => b"\0\0utf-8\0",
            Encoding::Gbk => b"\0\0gbk\0",
        };
        extra.extend_from_slice(label);
        let utf8 = if enc == Encoding::Utf8 { opt::UTF8 } else { 0 };
        self.build(kind | opt::CAPUTF8 | utf8 | self.passing(), enc, &extra)
    }

    /// BR_EXIT, said to everyone or to one host.
    fn exit_packet(&self) -> Vec<u8> {
        let command = cmd::BR_EXIT | opt::UTF8 | self.passing();
        self.build(command, Encoding::Utf8, b"\0")
    }

    /// [`opt::NOADDLIST`] if this member only passes through.
    fn passing(&self) -> u32 {
        if self.me.passing { opt::NOADDLIST } else { 0 }
    }

    fn build(&self, command: u32, enc: Encoding, extra: &[u8]) -> Vec<u8> {
        self.build_numbered(self.next_number(), command, enc, extra)
    }

    fn build_numbered(&self, number: u64, command: u32, enc: Encoding, extra: &[u8]) -> Vec<u8> {
        let user = enc.encode(&self.me.name);
        let host = enc.encode(&self.me.host);
        packet::build(number, &user, &host, command, extra)
    }

    /// Sends one datagram; a failure (no route, a full buffer) is logged, not fatal.
    pub async fn send_raw(&self, pkt: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send_to(pkt, to).await {
            debug!(%to, error = %e, "send failed");
        }
    }

    fn lock_members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, (IpAddr, oneshot::Sender<()>)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
