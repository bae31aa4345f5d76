//! `taojie chat`: the client, over the TCP broker (optionally authenticated) or the UDP hub.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it. On
//! a terminal it runs the line editor of [`crate::tty`]: each name in its colour, incoming
//! lines above the line being typed, your own lines shown under the name the broker gave.
//! SIGTERM and SIGHUP end it the same way as Ctrl-D, so the terminal gets its modes back.
//!
//! It comes in under its name at once (`/hello NAME` as its first line) and follows what the
//! broker says it is called. When the broker goes away it connects again (the next of the
//! list, or the same one), with the crate's [`Backoff::reconnect`], and comes back under its
//! name, in its room.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::ClientOptions;
use super::hub::cookie;
use super::line::valid_name;
use crate::framing::lines::{Piece, Splitter};
use crate::framing::{hello, native::FramedStream};
use crate::proxy_wire::ProxyUrl;
use crate::retry::Backoff;
use crate::secure::ClientAuth;
use crate::secure::flags::NoKey;
use crate::tty::console::{self, terminated};

/// Longest line shown from the server (longer ones are cut into pieces by the splitter).
const MAX_SHOWN: usize = 64 * 1024;
/// How often the UDP client tells the hub it is still there.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// Runs the chat client until stdin ends (then the server closes) or the server goes away.
pub async fn run(args: ClientOptions) -> Result<ExitCode> {
    valid_name(&args.name).map_err(|e| anyhow::anyhow!("--name {:?}: {e}", args.name))?;
    let addrs: Vec<&str> = args.addr.split(',').map(str::trim).collect();
    if addrs.iter().any(|a| a.is_empty()) {
        bail!("{:?}: an empty address in the list", args.addr);
    }
    let keyed = args.keys.any();
    if args.udp {
        if keyed {
            bail!(
                "the UDP hub has no authentication; --key and --identity work with the TCP broker only"
            );
        }
        if addrs.len() > 1 {
            bail!("the UDP hub takes one address");
        }
        return udp(crate::addr::resolve_one(addrs[0]).await?, &args.name).await;
    }
    let mut resolved = Vec::with_capacity(addrs.len());
    for a in &addrs {
        // Through a proxy the name goes to it as given; else it is resolved here, once.
        let addr = match &args.proxy {
            Some(_) => a.to_string(),
            None => crate::addr::resolve_one(a).await?.to_string(),
        };
        resolved.push(Broker {
            addr,
            proxy: args.proxy.clone(),
        });
    }
    let auth = if keyed {
        Some(args.keys.auth(NoKey::DefaultOrRefuse, &args.addr)?)
    } else {
        None
    };
    tcp(&resolved, &args.name, auth.as_ref()).await
}

/// A broker to join, and the proxy to reach it through if any.
#[derive(Debug, Clone)]
struct Broker {
    addr: String,
    proxy: Option<ProxyUrl>,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.addr)
    }
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Connects: plain lines, or with keys the encrypted channel and hello first. Returns the
/// two halves and the lines that came right after the hello.
async fn open(addr: &Broker, auth: Option<&ClientAuth>) -> Result<(Reader, Writer, BytesMut)> {
    let wait = Duration::from_secs(5);
    let (stream, _) = crate::proxy_wire::connect_tcp(&addr.addr, addr.proxy.as_ref(), wait)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let Some(auth) = auth else {
        let (rd, wr) = stream.into_split();
        return Ok((Box::new(rd), Box::new(wr), BytesMut::new()));
    };
    let secure = crate::secure::connect(stream, auth)
        .await
        .with_context(|| format!("{addr}"))?;
    let mut t = FramedStream::new(secure);
    hello::client(&mut t, "chat").await.context("hello")?;
    let parts = t.into_framed().into_parts();
    let (rd, wr) = tokio::io::split(parts.io);
    Ok((Box::new(rd), Box::new(wr), parts.read_buf))
}

/// How long a client on a pipe keeps looking for a broker after losing one (on a terminal
/// it keeps trying until the user leaves).
const FAILOVER: Duration = Duration::from_secs(60);
/// How long a rejoin keeps asking for its name while the old broker's hold on it lasts (a
/// killed broker's names are freed within about 10 s).
const RENAME_FOR: Duration = Duration::from_secs(40);
/// Between two asks for the name.
const RENAME_EVERY: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

type Connected = (Reader, Writer, BytesMut);
/// An attempt to connect again: which address of the list answered, and the connection.
type Connecting<'a> = Pin<Box<dyn Future<Output = Result<(usize, Connected)>> + Send + 'a>>;

async fn tcp(addrs: &[Broker], name: &str, auth: Option<&ClientAuth>) -> Result<ExitCode> {
    let mut at = 0;
    let (rd, wr, early) = first(addrs, &mut at, auth).await?;
    let (screen, mut keyboard) = console::open();
    let mut seat = Seat::new(name);
    let (mut rd, mut wr) = (Some(rd), Some(wr));
    send(&mut wr, &seat.hello()).await;
    let mut splitter = Splitter::new(MAX_SHOWN);
    let show = |chunk: &[u8], seat: &mut Seat, splitter: &mut Splitter| {
        splitter.feed(chunk, |p| match p {
            Piece::Line(l) => {
                seat.saw(l);
                screen.show(&local_time(l))
            }
            Piece::TooLong => screen.show(b"*** (an overlong line was cut)"),
        })
    };
    show(&early, &mut seat, &mut splitter);

    let mut buf = vec![0u8; 16 * 1024];
    let mut typing = true;
    let mut quitting = false;
    let mut backoff = Backoff::reconnect();
    // While the broker is lost: since when, the next attempt, and the attempt under way.
    let mut lost: Option<tokio::time::Instant> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut connecting: Option<Connecting<'_>> = None;
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        let again = seat.again;
        tokio::select! {
            code = &mut stop, if screen.is_terminal() => return Ok(code),
            _ = sleep_until(again), if again.is_some() => {
                seat.again = None;
                send(&mut wr, &format!("/nick {}\n", seat.asked)).await;
            }
            _ = sleep_until(retry_at), if retry_at.is_some() => {
                retry_at = None;
                at = (at + 1) % addrs.len();
                let mut from = at;
                connecting = Some(Box::pin(async move {
                    let c = first(addrs, &mut from, auth).await?;
                    Ok((from, c))
                }));
            }
            c = async { connecting.as_mut().expect("checked").await }, if connecting.is_some() => {
                connecting = None;
                match c {
                    Ok((answered, (r, w, early))) => {
                        at = answered;
                        backoff.reset();
                        lost = None;
                        (rd, wr) = (Some(r), Some(w));
                        splitter = Splitter::new(MAX_SHOWN);
                        screen.show(format!("*** reconnected to {}; rejoining as {}", addrs[at], seat.name).as_bytes());
                        let hello = seat.rejoin();
                        show(&early, &mut seat, &mut splitter);
                        send(&mut wr, &hello).await;
                    }
                    Err(e) => {
                        let since = lost.unwrap_or_else(tokio::time::Instant::now);
                        if !screen.is_terminal() && since.elapsed() >= FAILOVER {
                            return Err(e.context(format!("lost the broker; none answered for {} s", FAILOVER.as_secs())));
                        }
                        let wait = backoff.next_wait();
                        screen.show(format!("*** no broker answered; trying again in {:.0} s", wait.as_secs_f64().ceil()).as_bytes());
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                }
            }
            n = read(&mut rd, &mut buf) => {
                let n = n.unwrap_or(0);
                if n > 0 {
                    show(&buf[..n], &mut seat, &mut splitter);
                    continue;
                }
                (rd, wr) = (None, None);
                if quitting || !typing {
                    // The broker said goodbye (after /quit), or closed after our end of input.
                    return Ok(ExitCode::SUCCESS);
                }
                screen.show(format!("*** lost the broker at {}; reconnecting", addrs[at]).as_bytes());
                lost = Some(tokio::time::Instant::now());
                seat.again = None;
                retry_at = Some(tokio::time::Instant::now() + backoff.next_wait());
            }
            lines = keyboard.next(), if typing => {
                let Some(lines) = lines? else {
                    // The broker sees the end, says goodbye to the room and closes.
                    match wr.as_mut() {
                        Some(w) => { let _ = w.shutdown().await; }
                        None => return Ok(ExitCode::SUCCESS),
                    }
                    typing = false;
                    continue;
                };
                for line in lines {
                    if wr.is_none() {
                        if line.trim() == "/quit" {
                            return Ok(ExitCode::SUCCESS);
                        }
                        if !line.is_empty() {
                            screen.show(b"*** not connected: the line was not sent");
                        }
                        continue;
                    }
                    let trimmed = line.trim_end();
                    if trimmed == "/quit" || trimmed == "byebye" {
                        quitting = true;
                    } else if screen.is_terminal() && !line.is_empty() {
                        // The broker does not send our own lines back; show them as sent, under
                        // the name it gave us.
                        if let Some(action) = line.strip_prefix("/me ").filter(|a| !a.trim().is_empty()) {
                            screen.show(format!("* {} {action}", seat.name).as_bytes());
                        } else if !line.starts_with('/') || line.starts_with("//") {
                            let text = if line.starts_with("//") { &line[1..] } else { line.as_str() };
                            screen.show(format!("<{}> {text}", seat.name).as_bytes());
                        }
                    }
                    send(&mut wr, &format!("{line}\n")).await;
                }
            }
        }
    }
}

/// A line of history (`[2025-06-01T14:03:12Z] <ann> hi`) with its time in the local zone,
/// as the clock on the wall says it: `[14:03] <ann> hi`, or `[06-01 14:03] ...` on another
/// day. Other lines come back as they are.
fn local_time(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use chrono::{DateTime, Local};
    let parsed = line
        .strip_prefix(b"[")
        .and_then(|l| l.get(..20).zip(l.get(20..)))
        .filter(|(_, rest)| rest.starts_with(b"] "))
        .and_then(|(stamp, rest)| {
            let at = DateTime::parse_from_rfc3339(std::str::from_utf8(stamp).ok()?).ok()?;
            Some((at.with_timezone(&Local), &rest[2..]))
        });
    let Some((at, rest)) = parsed else {
        return line.into();
    };
    let shown = if at.date_naive() == Local::now().date_naive() {
        at.format("[%H:%M] ")
    } else {
        at.format("[%m-%d %H:%M] ")
    };
    let mut out = shown.to_string().into_bytes();
    out.extend_from_slice(rest);
    out.into()
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads from the broker; never resolves while there is none.
async fn read(rd: &mut Option<Reader>, buf: &mut [u8]) -> std::io::Result<usize> {
    match rd {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends `text` to the broker; a failed write drops the writer (the read side then sees the
/// connection end and the client reconnects).
async fn send(wr: &mut Option<Writer>, text: &str) {
    if let Some(w) = wr
        && w.write_all(text.as_bytes()).await.is_err()
    {
        *wr = None;
    }
}

/// Connects to the first broker of `addrs` that answers, from `at` on.
async fn first(addrs: &[Broker], at: &mut usize, auth: Option<&ClientAuth>) -> Result<Connected> {
    let mut last = None;
    for i in 0..addrs.len() {
        let k = (*at + i) % addrs.len();
        match tokio::time::timeout(CONNECT_WAIT, open(&addrs[k], auth)).await {
            Ok(Ok(c)) => {
                *at = k;
                return Ok(c);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(anyhow::anyhow!("connect to {}: timed out", addrs[k])),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no broker address")))
}

/// Who this member is, as the broker's own lines say: the name it gave (which may not be the
/// one asked for) and the room, and, after a reconnection, asking for the name again while
/// the old broker may still hold it.
struct Seat {
    /// The name the broker gave us (the one asked for, until it says otherwise).
    name: String,
    /// The room we are in.
    room: String,
    /// The name a rejoin asks for.
    asked: String,
    /// Until when a refused name is asked for again (during a rejoin).
    until: Option<tokio::time::Instant>,
    /// When to ask again.
    again: Option<tokio::time::Instant>,
}

impl Seat {
    fn new(name: &str) -> Seat {
        Seat {
            name: name.to_string(),
            room: crate::chat::room::LOBBY.to_string(),
            asked: name.to_string(),
            until: None,
            again: None,
        }
    }

    /// The first line to a broker: come in under our name, and in our room if not the lobby.
    fn hello(&self) -> String {
        let mut out = format!("/hello {}", self.asked);
        if self.room != crate::chat::room::LOBBY {
            out.push(' ');
            out.push_str(&self.room);
        }
        out.push('\n');
        out
    }

    /// A rejoin begins: ask for the name we had, until [`RENAME_FOR`] has passed.
    fn rejoin(&mut self) -> String {
        self.asked = self.name.clone();
        self.until = Some(tokio::time::Instant::now() + RENAME_FOR);
        self.again = None;
        self.hello()
    }

    /// Follows one of the broker's lines.
    fn saw(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let Some(notice) = line.strip_prefix("*** ") else {
            return;
        };
        if let Some(rest) = notice.strip_prefix("welcome, you are ") {
            // `NAME in ROOM; commands ...`
            if let Some((name, rest)) = rest.split_once(" in ") {
                self.name = name.to_string();
                if let Some(room) = rest.split(';').next() {
                    self.room = room.to_string();
                }
                if self.name == self.asked {
                    self.until = None;
                }
            }
        } else if let Some(new) = notice
            .strip_prefix(self.name.as_str())
            .and_then(|l| l.strip_prefix(" is now known as "))
        {
            self.name = new.to_string();
            if self.name == self.asked {
                self.until = None;
            }
        } else if let Some(room) = notice
            .strip_prefix(self.name.as_str())
            .and_then(|l| l.strip_prefix(" joined "))
        {
            self.room = room.to_string();
        } else if notice
            == format!(
                "the name {} is taken (or looks like one that is)",
                self.asked
            )
            && let Some(until) = self.until
        {
            let now = tokio::time::Instant::now();
            if now < until {
                self.again = Some(now + RENAME_EVERY);
            }
        }
    }
}

async fn udp(addr: SocketAddr, name: &str) -> Result<ExitCode> {
    let local: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    // A hello asks for a cookie; echoing it proves our address, which puts us on the hub's
    // list before we say anything, with no limit on what it sends us (see `hub::cookie`).
    socket.send(&cookie::hello()).await?;
    let (screen, mut keyboard) = console::open();
    let mut buf = vec![0u8; 64 * 1024];
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    // Until a welcome comes (the hub may not be up yet), a hello a second, ten at most.
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    let (mut welcomed, mut hellos) = (false, 0);
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            code = &mut stop, if screen.is_terminal() => return Ok(code),
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    let msg = &buf[..n];
                    match cookie::parse(msg) {
                        Some(cookie::Control::Welcome(c)) => {
                            welcomed = true;
                            let _ = socket.send(&cookie::proof(&c)).await;
                        }
                        Some(_) => {}
                        None => screen.show(msg.strip_suffix(b"\n").unwrap_or(msg)),
                    }
                }
                // An ICMP "port unreachable" from a hub that is not up yet: keep listening.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e).context("receive from the hub"),
            },
            lines = keyboard.next() => {
                let Some(lines) = lines? else {
                    return Ok(ExitCode::SUCCESS);
                };
                for line in lines.iter().filter(|l| !l.is_empty()) {
                    let msg = format!("{name}: {line}");
                    if screen.is_terminal() {
                        screen.show(msg.as_bytes());
                    }
                    socket.send(msg.as_bytes()).await.context("send to the hub")?;
                }
            }
            _ = retry.tick(), if !welcomed && hellos < 10 => {
                hellos += 1;
                let _ = socket.send(&cookie::hello()).await;
            }
            // A fresh cookie and proof now and then: a proof lasts five minutes.
            _ = keepalive.tick() => {
                let _ = socket.send(&cookie::hello()).await;
            }
        }
    }
}
