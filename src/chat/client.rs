//! `taojie chat`: the client, over the TCP broker (optionally authenticated) or the UDP hub.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it. On
//! a terminal each name gets its colour, and an incoming line first clears the input line
//! (`\r` + erase), is printed, and the prompt comes back, so it never lands in the middle of
//! what is being typed.
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

use super::ClientArgs;
use super::colour::paint;
use super::line::{Piece, Splitter, sanitize, valid_name};
use crate::auth::{self, Key};
use crate::framing::{hello, native::Transport};

/// Longest line shown from the server (longer ones are cut into pieces by the splitter).
const MAX_SHOWN: usize = 64 * 1024;
/// How often the UDP client tells the hub it is still there.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// Where incoming lines go: coloured with a prompt on a terminal, plain otherwise.
struct Screen {
    tty: bool,
}

impl Screen {
    fn new() -> Self {
        Screen {
            tty: std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        }
    }

    fn show(&self, raw: &[u8]) {
        let text = sanitize(raw);
        let mut out = std::io::stdout().lock();
        let _ = if self.tty {
            write!(out, "\r\x1b[K{}\n> ", paint(&text))
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    }

    fn prompt(&self) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "> ");
            let _ = out.flush();
        }
    }
}

/// Runs the chat client until stdin ends (then the server closes) or the server goes away.
pub async fn run(args: ClientArgs) -> Result<ExitCode> {
    valid_name(&args.name).map_err(|e| anyhow::anyhow!("--name {:?}: {e}", args.name))?;
    let key = match &args.key {
        Some(path) => Some(Key::load(path)?),
        None => None,
    };
    let addr = crate::addr::resolve_one(&args.addr).await?;
    if args.udp {
        if key.is_some() {
            bail!("the UDP hub has no authentication; --key works with the TCP broker only");
        }
        return udp(addr, &args.name).await;
    }
    tcp(addr, &args.name, key.as_ref()).await
}

async fn tcp(addr: SocketAddr, name: &str, key: Option<&Key>) -> Result<ExitCode> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let mut early = bytes::BytesMut::new();
    if let Some(key) = key {
        auth::client(&mut stream, Some(key))
            .await
            .context("authentication")?;
        let mut t = Transport::new(&mut stream);
        hello::client(&mut t, "chat").await.context("hello")?;
        early = t.into_framed().into_parts().read_buf;
    }
    let (rd, mut wr) = stream.into_split();
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

    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut input = Vec::new();
    let mut rd = rd;
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = n.context("read from the broker")?;
                if n == 0 {
                    return Ok(ExitCode::SUCCESS);
                }
                show(&buf[..n]);
            }
            r = stdin.read_until(b'\n', &mut input), if stdin_open => {
                if r.context("read stdin")? == 0 {
                    // The broker sees the end, says goodbye to the room and closes.
                    wr.shutdown().await?;
                    stdin_open = false;
                    continue;
                }
                if !input.ends_with(b"\n") {
                    input.push(b'\n');
                }
                wr.write_all(&input).await.context("send to the broker")?;
                input.clear();
                screen.prompt();
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
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut input = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    loop {
        tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    let msg = &buf[..n];
                    screen.show(msg.strip_suffix(b"\n").unwrap_or(msg));
                }
                // An ICMP "port unreachable" from a hub that is not up yet: keep listening.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e).context("receive from the hub"),
            },
            r = stdin.read_until(b'\n', &mut input) => {
                if read_line(r, &mut input)? {
                    return Ok(ExitCode::SUCCESS);
                }
                if !input.is_empty() {
                    let mut msg = format!("{name}: ").into_bytes();
                    msg.extend_from_slice(&input);
                    socket.send(&msg).await.context("send to the hub")?;
                }
                input.clear();
                screen.prompt();
            }
            _ = keepalive.tick() => {
                let _ = socket.send(&[]).await;
            }
        }
    }
}

/// Trims the newline; true at end of input.
fn read_line(r: std::io::Result<usize>, input: &mut Vec<u8>) -> Result<bool> {
    if r.context("read stdin")? == 0 {
        return Ok(true);
    }
    while input.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        input.pop();
    }
    Ok(false)
}
