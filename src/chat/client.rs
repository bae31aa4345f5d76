//! `taojie chat`: the client, over the TCP broker (optionally authenticated) or the UDP hub.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it. On
//! a terminal each name gets its colour, and an incoming line first clears the input line
//! (`\r` + erase), is printed, and the prompt comes back, so it never lands in the middle of
//! what is being typed. SIGTERM and SIGHUP end it the same way as Ctrl-D, so the terminal gets
//! its modes back.
use std::net::SocketAddr;
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
use crate::tty::console::{Keyboard, Screen, terminated};

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

/// How long the client keeps looking for a broker after losing one.
const FAILOVER: Duration = Duration::from_secs(60);
/// How long a rejoin keeps asking for its name while the old broker's hold on it lasts (a
/// killed broker's names are freed within about 10 s).
const RENAME_FOR: Duration = Duration::from_secs(40);
/// Between two asks for the name.
const RENAME_EVERY: Duration = Duration::from_secs(1);

async fn tcp(addrs: &[Broker], name: &str, auth: Option<&ClientAuth>) -> Result<ExitCode> {
    let mut at = 0;
    let (rd, mut wr, early) = first(addrs, &mut at, auth).await?;
    wr.write_all(format!("/nick {name}\n").as_bytes()).await?;
    let screen = Screen::new();
    let mut splitter = Splitter::new(MAX_SHOWN);
    let mut me = name.to_string();
    let mut rejoin = Rejoin::default();
    let mut show = |chunk: &[u8], me: &str, rejoin: &mut Rejoin| {
        splitter.feed(chunk, |p| match p {
            Piece::Line(l) => {
                rejoin.saw(l, me);
                screen.show(l)
            }
            Piece::TooLong => screen.show(b"*** (an overlong line was cut)"),
        })
    };
    show(&early, &me, &mut rejoin);
    screen.prompt();

    let mut keyboard = Keyboard::new();
    let mut rd = rd;
    let mut buf = vec![0u8; 16 * 1024];
    let mut typing = true;
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        let again = rejoin.again;
        tokio::select! {
            code = &mut stop, if screen.is_terminal() => return Ok(code),
            _ = tokio::time::sleep_until(again.unwrap_or_else(tokio::time::Instant::now)), if again.is_some() => {
                rejoin.again = None;
                wr.write_all(format!("/nick {me}\n").as_bytes()).await.context("send to the broker")?;
            }
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(n) => n,
                    Err(_) if addrs.len() > 1 => 0,
                    Err(e) => return Err(e).context("read from the broker"),
                };
                if n == 0 {
                    if addrs.len() > 1 && typing {
                        screen.show(b"*** the broker is gone; trying the next one");
                        let (r, w, early) = next(addrs, &mut at, auth).await?;
                        (rd, wr) = (r, w);
                        screen.show(format!("*** joined {}", addrs[at]).as_bytes());
                        let hello = rejoin.start(&me);
                        show(&early, &me, &mut rejoin);
                        wr.write_all(hello.as_bytes()).await.context("send to the broker")?;
                        continue;
                    }
                    if screen.is_terminal() && typing {
                        // Say why the client is ending when the user did not end it; a pipe's
                        // reader has the broker's lines.
                        screen.show(b"*** disconnected: the broker closed the connection");
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                show(&buf[..n], &me, &mut rejoin);
            }
            lines = keyboard.next(&screen), if typing => {
                let Some(lines) = lines? else {
                    // The broker sees the end, says goodbye to the room and closes.
                    wr.shutdown().await?;
                    typing = false;
                    continue;
                };
                for line in lines {
                    if let Some(new) = line.strip_prefix("/nick ") {
                        me = new.trim().to_string();
                    } else if screen.is_terminal() && !line.is_empty() && !line.starts_with('/') {
                        // The broker does not send our own lines back; show them as sent.
                        screen.show(format!("<{me}> {line}").as_bytes());
                    }
                    wr.write_all(format!("{line}\n").as_bytes())
                        .await
                        .context("send to the broker")?;
                }
            }
        }
    }
}

/// Connects to the first broker of `addrs` that answers, from `at` on.
async fn first(
    addrs: &[Broker],
    at: &mut usize,
    auth: Option<&ClientAuth>,
) -> Result<(Reader, Writer, BytesMut)> {
    let mut last = None;
    for i in 0..addrs.len() {
        let k = (*at + i) % addrs.len();
        match tokio::time::timeout(Duration::from_secs(5), open(&addrs[k], auth)).await {
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

/// After losing the broker at `at`: the next one that answers, going round the list for up
/// to [`FAILOVER`].
async fn next(
    addrs: &[Broker],
    at: &mut usize,
    auth: Option<&ClientAuth>,
) -> Result<(Reader, Writer, BytesMut)> {
    let deadline = tokio::time::Instant::now() + FAILOVER;
    let mut backoff = Backoff::reconnect();
    *at = (*at + 1) % addrs.len();
    loop {
        match first(addrs, at, auth).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context("no broker of the list answered"));
            }
            Err(_) => {
                let pause = backoff.next_wait();
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause)).await
            }
        }
    }
}

/// Getting the name and room back on another broker.
#[derive(Default)]
struct Rejoin {
    /// The room the member is in (from the broker's own lines; during a rejoin, the room
    /// asked for).
    room: Option<String>,
    /// Until when a refused name is asked for again (the old broker may still hold it).
    until: Option<tokio::time::Instant>,
    /// When to ask again.
    again: Option<tokio::time::Instant>,
}

impl Rejoin {
    /// Follows the broker's lines: the room the member is in, and whether the name came back.
    fn saw(&mut self, line: &[u8], me: &str) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        if let Some(rest) = line.strip_prefix("*** welcome, you are ")
            && self.until.is_none()
        {
            // `NAME in ROOM; ...`: the room of a fresh connection.
            if let Some((_, room)) = rest.split_once(" in ") {
                self.room = room.split(';').next().map(str::to_string);
            }
        } else if let Some(room) = line
            .strip_prefix("*** ")
            .and_then(|l| l.strip_prefix(me))
            .and_then(|l| l.strip_prefix(" joined "))
        {
            self.room = Some(room.to_string());
        } else if line.ends_with(&format!(" is now known as {me}")) {
            self.until = None;
        } else if line == format!("*** the name {me} is taken (or looks like one that is)")
            && let Some(until) = self.until
        {
            let now = tokio::time::Instant::now();
            if now < until {
                self.again = Some(now + RENAME_EVERY);
            }
        }
    }

    /// A rejoin begins: what to send the new broker (the name, and the room if not the
    /// lobby); the name is asked for again until [`RENAME_FOR`] has passed.
    fn start(&mut self, me: &str) -> String {
        self.until = Some(tokio::time::Instant::now() + RENAME_FOR);
        self.again = None;
        let mut out = format!("/nick {me}\n");
        if let Some(room) = self
            .room
            .as_ref()
            .filter(|r| *r != crate::chat::room::LOBBY)
        {
            out.push_str(&format!("/join {room}\n"));
        }
        out
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
    let screen = Screen::new();
    screen.prompt();
    let mut keyboard = Keyboard::new();
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
            lines = keyboard.next(&screen) => {
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
