//! The chat's console: a [`Screen`] that shows incoming lines (each name in its colour, above
//! the line being typed) and a [`Keyboard`] that gives whole lines, from a pipe or through
//! the [line editor](super::editor). [`open`] makes the pair.
//!
//! With stdin and stdout not terminals it is a plain line filter, so scripts can drive it.
//! SIGTERM and SIGHUP end a terminal client the same way as Ctrl-D ([`terminated`]); the
//! screen puts the terminal's modes back when it is dropped, whatever the editor was doing.
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use super::colour::paint;
use super::editor::{self, Printer, Typed};
use super::sanitize;
use crate::sys::TerminalModes;

/// Where incoming lines go: coloured above the line being typed on a terminal, plain
/// otherwise.
pub struct Screen {
    tty: Option<Tty>,
}

/// The terminal while the editor runs.
struct Tty {
    printer: Printer,
    /// The modes before the editor changed them.
    modes: TerminalModes,
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some(tty) = &self.tty {
            tty.printer.close();
            tty.modes.restore();
            // The prompt (and anything half typed) goes: the shell's prompt comes next.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

impl Screen {
    /// Shows one incoming line (neutralised; coloured on a terminal).
    pub fn show(&self, raw: &[u8]) {
        let text = sanitize(raw);
        match &self.tty {
            Some(tty) => tty.printer.print(paint(&text)),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Whether this is a terminal with the line editor (else a plain line filter).
    pub fn is_terminal(&self) -> bool {
        self.tty.is_some()
    }
}

/// Opens the console: the line editor when stdin and stdout are both terminals, a plain line
/// filter otherwise.
pub fn open() -> (Screen, Keyboard) {
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if tty
        && let Some(modes) = TerminalModes::save()
        && let Some((printer, lines)) = editor::start()
    {
        let screen = Screen {
            tty: Some(Tty { printer, modes }),
        };
        return (screen, Keyboard::Editor { lines, done: false });
    }
    let keyboard = Keyboard::Pipe {
        chunks: stdin_chunks(),
        line: Vec::new(),
        eof: false,
    };
    (Screen { tty: None }, keyboard)
}

/// What the user types: whole lines from a pipe, or from the line editor.
pub enum Keyboard {
    /// Lines from the editor.
    Editor {
        /// Finished lines, as the editor hands them over.
        lines: mpsc::UnboundedReceiver<Typed>,
        /// The user left (or the terminal failed).
        done: bool,
    },
    /// Bytes from a pipe or a file.
    Pipe {
        /// What the reading thread read.
        chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        /// Bytes not yet made into a line (kept here, so a cancelled wait loses none).
        line: Vec<u8>,
        /// Stdin has ended (or failed).
        eof: bool,
    },
}

impl Keyboard {
    /// The next lines typed; `None` at the end of input (or Ctrl-C, Ctrl-D on a terminal).
    pub async fn next(&mut self) -> Result<Option<Vec<String>>> {
        match self {
            Keyboard::Editor { lines, done } => {
                if *done {
                    return Ok(None);
                }
                match lines.recv().await {
                    Some(Typed::Line(l)) => {
                        Ok(Some(l.split(['\n', '\r']).map(str::to_string).collect()))
                    }
                    Some(Typed::Failed(e)) => {
                        *done = true;
                        bail!("read the terminal: {e}")
                    }
                    Some(Typed::Quit) | None => {
                        *done = true;
                        Ok(None)
                    }
                }
            }
            Keyboard::Pipe { chunks, line, eof } => loop {
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = line.drain(..=end).collect();
                    return Ok(Some(vec![plain_line(&raw)]));
                }
                let chunk = if *eof { None } else { chunks.recv().await };
                match chunk {
                    Some(Ok(chunk)) if !chunk.is_empty() => line.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        *eof = true;
                        return Err(e).context("read stdin");
                    }
                    _ => {
                        *eof = true;
                        if line.is_empty() {
                            return Ok(None);
                        }
                        // The last line had no newline: it is still a line.
                        return Ok(Some(vec![plain_line(&std::mem::take(line))]));
                    }
                }
            },
        }
    }
}

/// A line from a pipe without its line end.
fn plain_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// Reads stdin on a thread of its own and hands over what it reads. A read nobody answers
/// must not keep the client from exiting when the broker goes away or a signal comes: tokio's
/// stdin reads on the runtime's blocking pool, which the runtime waits for when it shuts
/// down, while this thread simply ends with the process.
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
