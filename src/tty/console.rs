//! The client side of a terminal conversation, shared by `taojie chat` and `taojie msg chat`:
//! a [`Screen`] that prints incoming lines above the line being typed (each name in its
//! colour) and a [`Keyboard`] that gives whole lines, from a pipe or through the line editor.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it.
//! SIGTERM and SIGHUP end a terminal client the same way as Ctrl-D ([`terminated`]), so the
//! terminal gets its modes back.
use std::cell::RefCell;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::colour::paint;
use super::sanitize;
use super::term::{self, Edit, Editor, RawMode};

/// Where incoming lines go: coloured above the line being typed on a terminal, plain
/// otherwise.
pub struct Screen {
    raw: Option<RawMode>,
    editor: RefCell<Editor>,
}

impl Default for Screen {
    fn default() -> Self {
        Screen::new()
    }
}

impl Screen {
    /// The screen: the terminal in raw mode when stdin and stdout are both terminals.
    pub fn new() -> Self {
        let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
        Screen {
            raw: if tty { RawMode::enter() } else { None },
            editor: RefCell::new(Editor::default()),
        }
    }

    /// Shows one incoming line (neutralised; coloured on a terminal).
    pub fn show(&self, raw: &[u8]) {
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

    /// Whether this is a terminal in raw mode (else a plain line filter).
    pub fn is_terminal(&self) -> bool {
        self.raw.is_some()
    }

    /// Draws the input line again.
    pub fn prompt(&self) {
        if self.raw.is_some() {
            let mut out = std::io::stdout().lock();
            term::redraw(&mut out, self.editor.borrow().text());
            let _ = out.flush();
        }
    }
}

/// What the user types: whole lines from a pipe, or keystrokes through the line editor.
pub struct Keyboard {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Bytes read from a pipe and not yet made into a line (kept here, so a cancelled wait
    /// loses none).
    line: Vec<u8>,
    /// Stdin has ended (or failed).
    eof: bool,
    done: bool,
}

impl Default for Keyboard {
    fn default() -> Self {
        Keyboard::new()
    }
}

impl Keyboard {
    /// Starts reading stdin.
    pub fn new() -> Self {
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
    pub async fn next(&mut self, screen: &Screen) -> Result<Option<Vec<String>>> {
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
pub async fn terminated() -> ExitCode {
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
