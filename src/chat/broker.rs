//! The TCP broker's side of one connection: a plain line protocol, so `nc`, `ncat` and telnet
//! are clients, and with `--key` the same lines after taojie's authentication and hello.
//!
//! Each connection is one task that reads lines (into a per-thread buffer; only an unfinished
//! line is kept). Posts are written to the member's socket by the fan-out's lanes; the task
//! only flushes what the socket did not take at once. An idle member costs its task, its
//! socket and an empty queue.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tracing::debug;

use super::fanout::{Fanout, MemberId, Post, Reservation};
use super::gate::Gate;
use super::line::valid_name;
use super::queue::{Flushed, Member};
use super::room::{LOBBY, Rooms};
use crate::framing::hello;
use crate::framing::lines::{Piece, Splitter};
use crate::framing::native::FramedStream;
use crate::secure::{self, ServerAuth};
use crate::server::{Conn, PreAuth};
use crate::tty::sanitize;

const SCRATCH_LEN: usize = 64 * 1024;
/// How long a leaving client gets to take what is still queued for it.
const FAREWELL: Duration = Duration::from_secs(2);
/// How long a new connection is given to name itself (`/hello NAME [ROOM]` as its first
/// line) before it comes in under a default name: a client that names itself sends that line
/// at once, so only one that says nothing (someone at `nc`, reading) waits this long for its
/// welcome.
const HELLO_WAIT: Duration = Duration::from_millis(500);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// What every session shares.
#[derive(Clone)]
pub struct Broker {
    /// Members, names, rooms and history.
    pub rooms: Arc<Rooms>,
    /// Where posts go.
    pub fanout: Arc<dyn Fanout>,
    /// Longest line accepted, in bytes.
    pub max_line: usize,
    /// Lines a second each sender may send (bursts of twice that); `None`: no limit.
    pub rate: Option<f64>,
    /// With keys, only taojie clients that prove one get in (through the encrypted channel).
    pub auth: Option<Arc<ServerAuth>>,
    /// Caps and deadline for keyed connections still in their handshake.
    pub preauth: Arc<PreAuth>,
}

/// Why a session ended.
enum End {
    Quit,
    Closed,
    Dropped,
}

/// One client's state between reads.
struct Session<'a> {
    broker: &'a Broker,
    id: MemberId,
    name: Arc<str>,
    room: Arc<str>,
    quit: bool,
    batch: BytesMut,
    count: usize,
    /// The sender's flood limit, when the broker has one.
    rate: Option<Bucket>,
    /// The gate of the member's room (kept here: looked up again only on /join).
    gate: Option<Arc<Gate>>,
    /// A name being reserved beyond this broker (`/nick` with a backplane): the name, and
    /// the reservation. Nothing more is read meanwhile.
    reserving: Option<(Arc<str>, Reservation)>,
    /// Lines that came after a `/nick` still being reserved, handled once it is settled.
    held: VecDeque<Vec<u8>>,
}

/// A token bucket: `per_sec` lines a second, up to twice that saved up for a burst.
struct Bucket {
    per_sec: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(per_sec: f64) -> Bucket {
        Bucket {
            per_sec,
            tokens: 2.0 * per_sec,
            at: tokio::time::Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = tokio::time::Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + earned).min(2.0 * self.per_sec);
        self.at = now;
    }

    /// One line sent (the count may go below zero within one read; reading then waits).
    fn spend(&mut self) {
        self.tokens -= 1.0;
    }

    /// When reading may go on, if it must wait.
    fn held(&mut self) -> Option<tokio::time::Instant> {
        self.refill();
        (self.tokens < 1.0)
            .then(|| self.at + Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
    }
}

/// Serves one connection until the client leaves, is dropped, or the connection fails.
pub async fn session(conn: Conn, broker: Arc<Broker>) -> io::Result<()> {
    let (conn, early) = match &broker.auth {
        None => (conn, BytesMut::new()),
        Some(auth) => match relay(conn, auth, &broker.preauth).await? {
            Some(relayed) => relayed,
            None => return Ok(()),
        },
    };
    let mut early = early;
    let hello = first_line(&conn, &mut early, broker.max_line).await?;
    let conn = Arc::new(conn);
    let id = broker.rooms.new_id();
    let (mut name, mut room) = (None, LOBBY.to_string());
    let mut refused = None;
    let mut reserved_name = None;
    if let Some((wanted, wanted_room)) = hello {
        if let Some(r) = wanted_room {
            room = r;
        }
        // Beyond this broker the name is reserved first; a refusal there leaves the default.
        let reserved = match broker.fanout.reserve(id, &wanted, &room) {
            Some(reservation) => reservation.await,
            None => Ok(()),
        };
        match reserved {
            Ok(()) => {
                reserved_name = Some(wanted.clone());
                name = Some(wanted);
            }
            Err(e) => refused = Some(e),
        }
    }
    let (id, member, name, joined, taken) =
        broker
            .rooms
            .enter_as(id, Some(conn.clone()), name.as_deref(), &room);
    if let Some(why) = refused.or(taken) {
        broker.rooms.tell(id, &why);
        if let Some(wanted) = &reserved_name {
            // Taken here after all: give back what was reserved for it.
            broker.fanout.released(wanted, Some(&name));
        }
    }
    broker.fanout.placed(id, &name, &room);
    broker.fanout.publish(joined);
    let mut s = Session {
        broker: &broker,
        id,
        name,
        room: room.into(),
        quit: false,
        batch: BytesMut::new(),
        count: 0,
        rate: broker.rate.map(Bucket::new),
        gate: member.gate(),
        reserving: None,
        held: VecDeque::new(),
    };
    let mut splitter = Splitter::new(broker.max_line);
    s.feed(&mut splitter, &early);
    let end = s.run(&conn, &member, &mut splitter).await;
    // Lanes may still hold this member in a post's snapshot: stop them writing to it.
    member.close();
    if let Some((name, _)) = s.reserving.take() {
        // Left while a new name was being reserved: give back whatever was reserved.
        broker.fanout.released(&name, Some(&s.name));
    }
    let why = match &end {
        Ok(End::Dropped) => {
            // Dropped by a lane (which told the room) or, for lagging, by its own flush.
            if let Some(post) = broker.rooms.drop_member(id) {
                broker.fanout.publish(post);
            }
            // Given back only once the member is gone from the rooms (see `nats::link`).
            broker.fanout.released(&s.name, None);
            return Ok(());
        }
        Ok(End::Quit) => "quit",
        Ok(End::Closed) => "disconnected",
        Err(_) => "connection lost",
    };
    if let Some(post) = broker.rooms.leave(id, why) {
        broker.fanout.publish(post);
    }
    broker.fanout.released(&s.name, None);
    if let Ok(End::Quit) = end {
        conn.shutdown_write()?;
    }
    end.map(|_| ())
}

/// Opens the encrypted channel and says hello, then relays the channel's plaintext through
/// a socket pair whose other end becomes the member's connection: the lanes write to it as to
/// any member, and the relay task seals what they write. Returns that end and the lines the
/// client sent right after its hello (already in the frame buffer); `None` when the client
/// was refused.
async fn relay(
    conn: Conn,
    auth: &ServerAuth,
    preauth: &PreAuth,
) -> io::Result<Option<(Conn, BytesMut)>> {
    let peer = conn.peer().clone();
    let handshake = secure::server(conn, auth);
    let Some((secure, _)) = preauth
        .handshake(&peer, "handshake refused", handshake)
        .await
    else {
        return Ok(None);
    };
    let mut t = FramedStream::new(secure);
    if let Err(e) = hello::server(&mut t, "chat").await {
        debug!(error = %e, "bad hello");
        crate::metrics::service("chat").refused("bad hello");
        return Ok(None);
    }
    let parts = t.into_framed().into_parts();
    let (inside, mut outside) = tokio::net::UnixStream::pair()?;
    let mut secure = parts.io;
    tokio::spawn(async move {
        if let Err(e) = tokio::io::copy_bidirectional(&mut secure, &mut outside).await {
            debug!(error = %e, "encrypted member's connection ended");
        }
    });
    Ok(Some((Conn::relayed(inside), parts.read_buf)))
}

impl Session<'_> {
    async fn run(
        &mut self,
        conn: &Conn,
        member: &Member,
        splitter: &mut Splitter,
    ) -> io::Result<End> {
        loop {
            let pending = match member.flush()? {
                Flushed::Gone => return Ok(End::Dropped),
                Flushed::Pending => true,
                Flushed::Empty => false,
            };
            if self.quit {
                self.broker.rooms.tell(self.id, "bye");
                return farewell(conn, member).await.map(|_| End::Quit);
            }
            // While the fan-out is behind, or a member of this room is, or this sender is past
            // its rate, this client's lines wait in its socket (TCP slows the sender).
            let backlog = self.broker.fanout.backlogged();
            let gate = self.gate.clone().filter(|g| !g.is_open());
            let held = self.rate.as_mut().and_then(|r| r.held());
            let reading =
                backlog.is_none() && gate.is_none() && held.is_none() && self.reserving.is_none();
            let reserving = &mut self.reserving;
            // A member that stops draining is dropped when its oldest line is too old.
            let lag = if pending { member.lag_deadline() } else { None };
            tokio::select! {
                _ = member.wait() => {}
                settled = async { reserving.as_mut().expect("checked").1.as_mut().await }, if reserving.is_some() => {
                    let (name, _) = self.reserving.take().expect("checked");
                    self.reserved(&name, settled);
                }
                r = conn.writable(), if pending => r?,
                _ = until(backlog) => {}
                _ = async { gate.as_ref().expect("checked").opened().await }, if gate.is_some() => {}
                _ = tokio::time::sleep_until(held.unwrap_or_else(tokio::time::Instant::now)), if held.is_some() => {}
                _ = tokio::time::sleep_until(lag.unwrap_or_else(tokio::time::Instant::now)), if lag.is_some() => {}
                r = conn.readable(), if reading => {
                    r?;
                    let got = SCRATCH.with_borrow_mut(|buf| match conn.try_read(buf) {
                        Ok(0) => Ok(None),
                        Ok(n) => {
                            self.feed(splitter, &buf[..n]);
                            Ok(Some(()))
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(())),
                        Err(e) => Err(e),
                    })?;
                    if got.is_none() {
                        if let Some(rest) = splitter.finish() {
                            self.line(&rest);
                            self.flush();
                        }
                        farewell(conn, member).await?;
                        return Ok(End::Closed);
                    }
                }
            }
        }
    }

    /// Handles every line in `chunk`; chat lines from one read go out as one post.
    fn feed(&mut self, splitter: &mut Splitter, chunk: &[u8]) {
        splitter.feed(chunk, |piece| {
            if self.quit {
                return;
            }
            match piece {
                Piece::Line(raw) => self.line(raw),
                Piece::TooLong => {
                    let max = self.broker.max_line;
                    self.broker.rooms.tell(
                        self.id,
                        &format!("line too long (over {max} bytes); not sent"),
                    );
                }
            }
        });
        self.flush();
    }

    fn line(&mut self, raw: &[u8]) {
        if self.reserving.is_some() {
            self.held.push_back(raw.to_vec());
            return;
        }
        let text = sanitize(raw);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if text == "byebye" {
            self.flush();
            self.quit = true;
        } else if let Some(escaped) = text.strip_prefix("//") {
            self.say(&format!("/{escaped}"));
        } else if let Some(cmd) = text.strip_prefix('/') {
            self.flush();
            self.command(cmd);
        } else {
            self.say(text);
        }
    }

    fn say(&mut self, text: &str) {
        // Writing into a BytesMut cannot fail.
        let _ = writeln!(self.batch, "<{}> {text}", self.name);
        self.count += 1;
        if let Some(rate) = &mut self.rate {
            rate.spend();
        }
    }

    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        // Counted per batch of lines, not per line: the metric costs one add per read.
        crate::metrics::chat().lines.inc_by(self.count as u64);
        let post = Post {
            room: self.room.clone(),
            lines: self.batch.split().freeze(),
            count: std::mem::take(&mut self.count),
            from: Some(self.id),
            keep: true,
            about: None,
        };
        self.broker.fanout.publish(post);
    }

    /// Renames the member here (a reservation beyond this broker, if any, already made).
    fn rename(&mut self, new: &str) {
        match self.broker.rooms.rename(self.id, new) {
            Ok((name, post)) => {
                let old = std::mem::replace(&mut self.name, name);
                self.broker.fanout.released(&old, Some(new));
                self.broker.fanout.publish(post);
            }
            Err(e) => {
                // Taken here after all: give back what was reserved for it.
                self.broker.fanout.released(new, Some(&self.name));
                self.broker.rooms.tell(self.id, &e);
            }
        }
    }

    /// A reservation settled: rename or say why not, then handle the lines held meanwhile
    /// (up to the next `/nick` that has to wait).
    fn reserved(&mut self, name: &str, settled: Result<(), String>) {
        match settled {
            Ok(()) => self.rename(name),
            Err(e) => self.broker.rooms.tell(self.id, &e),
        }
        while self.reserving.is_none() && !self.quit {
            let Some(raw) = self.held.pop_front() else {
                break;
            };
            self.line(&raw);
        }
        self.flush();
    }

    fn command(&mut self, cmd: &str) {
        let (verb, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
        let arg = arg.trim();
        let rooms = &self.broker.rooms;
        match verb {
            "nick" => {
                if let Err(e) = valid_name(arg) {
                    rooms.tell(self.id, &e);
                } else if let Some(r) = self.broker.fanout.reserve(self.id, arg, &self.room) {
                    self.reserving = Some((arg.into(), r));
                } else {
                    self.rename(arg);
                }
            }
            "who" => {
                let fanout = &self.broker.fanout;
                rooms.tell(self.id, &rooms.who(self.id, &|room| fanout.elsewhere(room)));
            }
            "join" => match rooms.join(self.id, arg) {
                Ok((room, left, joined, gate)) => {
                    self.broker.fanout.placed(self.id, &self.name, &room);
                    self.room = room;
                    self.gate = Some(gate);
                    self.broker.fanout.publish(left);
                    self.broker.fanout.publish(joined);
                }
                Err(e) => rooms.tell(self.id, &e),
            },
            "me" if !arg.is_empty() => {
                let _ = writeln!(self.batch, "* {} {arg}", self.name);
                self.count += 1;
                self.flush();
            }
            "quit" => self.quit = true,
            // The greeting of a client that names itself, come too late to be one: a rename,
            // and a move when it names a room.
            "hello" => {
                let mut words = arg.split_whitespace();
                let (name, room) = (words.next().unwrap_or(""), words.next());
                self.command(&format!("nick {name}"));
                if let Some(room) = room {
                    let join = format!("/join {room}").into_bytes();
                    if self.reserving.is_some() {
                        self.held.push_back(join);
                    } else {
                        self.line(&join);
                    }
                }
            }
            _ => rooms.tell(
                self.id,
                &format!(
                    "unknown command /{verb}; commands: /nick NAME, /who, /join ROOM, /me ACTION, /quit (// sends a line starting with /)"
                ),
            ),
        }
    }
}

/// Resolves with `backlog`, or never when there is none.
async fn until(backlog: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>>) {
    match backlog {
        Some(wait) => wait.await,
        None => std::future::pending().await,
    }
}

/// Gives a leaving client a short while to take what is queued for it.
async fn farewell(conn: &Conn, member: &Member) -> io::Result<()> {
    let drain = async {
        while member.flush()? == Flushed::Pending {
            conn.writable().await?;
        }
        Ok(())
    };
    tokio::time::timeout(FAREWELL, drain)
        .await
        .unwrap_or(Ok(()))
}

/// Waits up to [`HELLO_WAIT`] for the client's first line (reading into `early`) and, when it
/// is `/hello NAME [ROOM]`, takes it out and returns the name and the room asked for. Any
/// other first line stays in `early`, to be handled as usual once the member is in.
async fn first_line(
    conn: &Conn,
    early: &mut BytesMut,
    max_line: usize,
) -> io::Result<Option<(String, Option<String>)>> {
    let deadline = tokio::time::Instant::now() + HELLO_WAIT;
    while !early.contains(&b'\n') && early.len() <= max_line {
        tokio::select! {
            r = conn.readable() => r?,
            () = tokio::time::sleep_until(deadline) => break,
        }
        let got = SCRATCH.with_borrow_mut(|buf| match conn.try_read(buf) {
            Ok(n) => {
                early.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(1),
            Err(e) => Err(e),
        })?;
        if got == 0 {
            break;
        }
    }
    let Some(end) = early.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let Some(hello) = parse_hello(&early[..end]) else {
        return Ok(None);
    };
    let _ = early.split_to(end + 1);
    Ok(Some(hello))
}

/// `/hello NAME [ROOM]` (a line without its newline): the name, and the room if it names a
/// valid one.
fn parse_hello(line: &[u8]) -> Option<(String, Option<String>)> {
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut words = line.strip_prefix("/hello ")?.split_whitespace();
    let name = words.next()?.to_string();
    let room = words
        .next()
        .filter(|r| valid_name(r).is_ok())
        .map(str::to_string);
    Some((name, room))
}
