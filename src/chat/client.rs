//! `taojie chat`: the client, over the TCP broker (optionally authenticated) or the UDP hub.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it. On
//! a terminal each name gets its colour, and an incoming line first clears the input line
//! (`\r` + erase), is printed, and the prompt comes back, so it never lands in the middle of
//! what is being typed. SIGTERM and SIGHUP end it the same way as Ctrl-D, so the terminal gets
//! its modes back.
use std::cell::RefCell;
use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::ClientArgs;
use super::colour::paint;
use super::line::{Piece, Splitter, sanitize, valid_name};
use super::term::{self, Edit, Editor, RawMode};
use crate::auth::{self, Key};
use crate::framing::{hello, native::Transport};

/// Longest line shown from the server (longer ones are cut into pieces by the splitter).
const MAX_SHOWN: usize = 64 * 1024;
/// How often the UDP client tells the hub it is still there.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// Where incoming lines go: coloured above the line being typed on a terminal, plain
/// otherwise.
struct Screen {
    raw: Option<RawMode>,
    editor: RefCell<Editor>,
}

impl Screen {
    fn new() -> Self {
        let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
        Screen {
            raw: if tty { RawMode::enter() } else { None },
            editor: RefCell::new(Editor::default()),
        }
    }

    fn show(&self, raw: &[u8]) {
        let text = sanitize(raw);
        let mut out = std::io::stdout().lock();
        if self.raw.is_some() {
            let _ = write!(out, "\r\x1b[K{}\n", paint(&text));
            term::redraw(&mut out, self.editor.borrow().text());
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    fn prompt(&self) {
        if self.raw.is_some() {
            let mut out = std::io::stdout().lock();
            term::redraw(&mut out, self.editor.borrow().text());
            let _ = out.flush();
        }
    }
}

/// What the user types: whole lines from a pipe, or keystrokes through the line editor.
struct Keyboard {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Bytes read from a pipe and not yet made into a line (kept here, so a cancelled wait
    /// loses none).
    line: Vec<u8>,
    /// Stdin has ended (or failed).
    eof: bool,
    done: bool,
}

impl Keyboard {
    fn new() -> Self {
        Keyboard {
            chunks: stdin_chunks(),
            line: Vec::new(),
            eof: false,
            done: false,
        }
    }

    /// The next bytes from stdin; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.eof {
            return Ok(None);
        }
        match self.chunks.recv().await {
            Some(Ok(chunk)) if !chunk.is_empty() => Ok(Some(chunk)),
            Some(Err(e)) => {
                self.eof = true;
                Err(e).context("read stdin")
            }
            _ => {
                self.eof = true;
                Ok(None)
            }
        }
    }

    /// The next lines typed; `None` at the end of input (or Ctrl-C, Ctrl-D on a terminal).
    async fn next(&mut self, screen: &Screen) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        if screen.raw.is_none() {
            loop {
                if let Some(end) = self.line.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = self.line.drain(..=end).collect();
                    return Ok(Some(vec![plain_line(&raw)]));
                }
                match self.chunk().await? {
                    Some(chunk) => self.line.extend_from_slice(&chunk),
                    None if self.line.is_empty() => return Ok(None),
                    // The last line had no newline: it is still a line.
                    None => return Ok(Some(vec![plain_line(&std::mem::take(&mut self.line))])),
                }
            }
        }
        let Some(chunk) = self.chunk().await? else {
            return Ok(None);
        };
        let mut lines = Vec::new();
        for edit in screen.editor.borrow_mut().feed(&chunk) {
            match edit {
                Edit::Line(l) => lines.push(l),
                Edit::Quit => self.done = true,
            }
        }
        if self.done && lines.is_empty() {
            return Ok(None);
        }
        screen.prompt();
        Ok(Some(lines))
    }
}

/// A line from a pipe without its line end.
fn plain_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// Reads stdin on a thread of its own and hands over what it reads. A read nobody answers (a
/// terminal left alone) must not keep the client from exiting when the broker goes away or a
/// signal comes: tokio's stdin reads on the runtime's blocking pool, which the runtime waits
/// for when it shuts down, while this thread simply ends with the process.
fn stdin_chunks() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 4096];
        loop {
            let got = match stdin.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                got => got.map(|n| buf[..n].to_vec()),
            };
            let end = !matches!(&got, Ok(chunk) if !chunk.is_empty());
            if tx.blocking_send(got).is_err() || end {
                break;
            }
        }
    });
    rx
}

/// Waits for SIGTERM or SIGHUP and gives the exit code for it, so the client can return and
/// put the terminal back (their default action would leave it without echo or line editing).
async fn terminated() -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => ExitCode::from(128 + libc::SIGTERM as u8),
        _ = hup.recv() => ExitCode::from(128 + libc::SIGHUP as u8),
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

    let mut keyboard = Keyboard::new();
    let mut me = name.to_string();
    let mut rd = rd;
    let mut buf = vec![0u8; 16 * 1024];
    let mut typing = true;
    let stop = terminated();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            code = &mut stop, if screen.raw.is_some() => return Ok(code),
            n = rd.read(&mut buf) => {
                let n = n.context("read from the broker")?;
                if n == 0 {
                    if screen.raw.is_some() && typing {
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
                    } else if screen.raw.is_some() && !line.is_empty() && !line.starts_with('/') {
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
            code = &mut stop, if screen.raw.is_some() => return Ok(code),
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
                    if screen.raw.is_some() {
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
