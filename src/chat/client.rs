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
use tokio::net::{TcpStream, UdpSocket};

use super::ClientArgs;
use super::console::{Keyboard, Screen, terminated};
use super::line::{Piece, Splitter, valid_name};
use crate::framing::{hello, native::Transport};
use crate::secure::ClientAuth;
use crate::secure::flags::NoKey;

/// Longest line shown from the server (longer ones are cut into pieces by the splitter).
const MAX_SHOWN: usize = 64 * 1024;
/// How often the UDP client tells the hub it is still there.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// Runs the chat client until stdin ends (then the server closes) or the server goes away.
pub async fn run(args: ClientArgs) -> Result<ExitCode> {
    valid_name(&args.name).map_err(|e| anyhow::anyhow!("--name {:?}: {e}", args.name))?;
    let addr = crate::addr::resolve_one(&args.addr).await?;
    let keyed = args.key.is_some() || args.identity.is_some();
    if args.udp {
        if keyed {
            bail!(
                "the UDP hub has no authentication; --key and --identity work with the TCP broker only"
            );
        }
        return udp(addr, &args.name).await;
    }
    let auth = if keyed {
        Some(crate::secure::flags::client_auth(
            args.key.as_deref(),
            args.identity.as_deref(),
            NoKey::DefaultOrRefuse,
            &args.addr,
        )?)
    } else {
        None
    };
    tcp(addr, &args.name, auth.as_ref()).await
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Connects: plain lines, or with keys the encrypted channel and hello first. Returns the
/// two halves and the lines that came right after the hello.
async fn open(addr: SocketAddr, auth: Option<&ClientAuth>) -> Result<(Reader, Writer, BytesMut)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let Some(auth) = auth else {
        let (rd, wr) = stream.into_split();
        return Ok((Box::new(rd), Box::new(wr), BytesMut::new()));
    };
    let secure = crate::secure::connect(stream, auth)
        .await
        .with_context(|| format!("{addr}"))?;
    let mut t = Transport::new(secure);
    hello::client(&mut t, "chat").await.context("hello")?;
    let parts = t.into_framed().into_parts();
    let (rd, wr) = tokio::io::split(parts.io);
    Ok((Box::new(rd), Box::new(wr), parts.read_buf))
}

async fn tcp(addr: SocketAddr, name: &str, auth: Option<&ClientAuth>) -> Result<ExitCode> {
    let (rd, mut wr, early) = open(addr, auth).await?;
    wr.write_all(format!("/nick {name}\n").as_bytes()).await?;
    let screen = Screen::new();
    let mut splitter = Splitter::new(MAX_SHOWN);
    let mut show = |chunk: &[u8]| {
        splitter.feed(chunk, |p| match p {
            Piece::Line(l) => screen.show(l),
            Piece::TooLong => screen.show(b"*** (an overlong line was cut)"),
        })
    };
    show(&early);
    screen.prompt();

    let mut keyboard = Keyboard::new();
    let mut me = name.to_string();
    let mut rd = rd;
    let mut buf = vec![0u8; 16 * 1024];
    let mut typing = true;
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            code = &mut stop, if screen.is_terminal() => return Ok(code),
            n = rd.read(&mut buf) => {
                let n = n.context("read from the broker")?;
                if n == 0 {
                    if screen.is_terminal() && typing {
                        // Say why the client is ending when the user did not end it; a pipe's
                        // reader has the broker's lines.
                        screen.show(b"*** disconnected: the broker closed the connection");
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                show(&buf[..n]);
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

async fn udp(addr: SocketAddr, name: &str) -> Result<ExitCode> {
    let local: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    // An empty datagram puts us on the hub's list before we say anything.
    socket.send(&[]).await?;
    let screen = Screen::new();
    screen.prompt();
    let mut keyboard = Keyboard::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            code = &mut stop, if screen.is_terminal() => return Ok(code),
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    let msg = &buf[..n];
                    screen.show(msg.strip_suffix(b"\n").unwrap_or(msg));
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
            _ = keepalive.tick() => {
                let _ = socket.send(&[]).await;
            }
        }
    }
}
