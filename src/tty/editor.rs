//! The line editor of `taojie chat` and `taojie msg chat` on a terminal: rustyline, on a
//! thread of its own (its `readline` blocks), with its history, cursor keys, Home/End,
//! Ctrl-W/Ctrl-U, wide characters and bracketed paste. Incoming lines go through its
//! external printer, which prints them above the line being typed and draws that line again.
//!
//! A finished line is taken off the screen as it is handed over, so the chat shows it once,
//! as the room sees it (`<name> text`), not also as it was typed after the prompt.
//!
//! The editor draws the prompt again after every line it prints, on its own thread, so a
//! line still on its way when the chat ends would bring the prompt back under the shell's.
//! [`Printer::close`] therefore has the editor stop drawing it and waits until it has.
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr;

/// The prompt in front of the line being typed.
pub const PROMPT: &str = "> ";
/// Lines kept for the Up and Down keys.
const HISTORY: usize = 500;

/// What the keyboard gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// A finished line (a paste may hold several, separated by newlines).
    Line(String),
    /// Ctrl-C, or Ctrl-D on an empty line: leave.
    Quit,
    /// The terminal failed.
    Failed(String),
}

/// How long [`Printer::close`] waits for the editor to take its prompt away.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Prints above the line being typed.
pub struct Printer {
    out: Mutex<Box<dyn ExternalPrinter + Send>>,
    ending: Arc<Ending>,
}

/// The chat ending, as the editor's thread and the printer see it.
#[derive(Default)]
struct Ending {
    state: Mutex<EndState>,
    changed: Condvar,
}

#[derive(Default)]
struct EndState {
    /// The chat is ending: the prompt is drawn empty from now on.
    closing: bool,
    /// The editor has drawn the empty prompt, or stopped reading lines.
    settled: bool,
}

impl Ending {
    fn lock(&self) -> std::sync::MutexGuard<'_, EndState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the editor as done with the prompt and wakes [`Printer::close`].
    fn settle(&self) {
        self.lock().settled = true;
        self.changed.notify_all();
    }
}

/// The prompt the editor draws: [`PROMPT`], empty once the chat is ending.
struct Prompt(Arc<Ending>);

impl rustyline::Prompt for Prompt {
    fn raw(&self) -> &str {
        let closing = self.0.lock().closing;
        if closing {
            self.0.settle();
            ""
        } else {
            PROMPT
        }
    }
}

impl Printer {
    /// Prints `text` (one or more whole lines) above the line being typed.
    pub fn print(&self, mut text: String) {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        // A panic elsewhere while printing must not silence the chat.
        let mut p = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = p.print(text);
    }

    /// Takes the prompt off for good as the chat ends: every line printed before has been
    /// drawn and the prompt under them is gone when this returns (or after half a second).
    pub fn close(&self) {
        self.ending.lock().closing = true;
        // Something printed makes the editor draw again even when nothing else is on its
        // way; that drawing, the first with the empty prompt, comes after every line queued
        // before it. What is printed moves the cursor up a row and back down to the start
        // of the row the prompt was cleared from: nothing shows, no blank line is left.
        let printed = {
            let mut p = self.out.lock().unwrap_or_else(|e| e.into_inner());
            p.print("\x1b[A\n".to_string()).is_ok()
        };
        if !printed {
            return;
        }
        let state = self.ending.lock();
        let _ = self
            .ending
            .changed
            .wait_timeout_while(state, CLOSE_WAIT, |s| !s.settled);
    }
}

/// Starts the editor on stdin and stdout (both terminals): the printer, and the lines as
/// they are finished. `None` when the terminal cannot be edited (a `dumb` one, say).
pub fn start() -> Option<(Printer, mpsc::UnboundedReceiver<Typed>)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // Unbounded, as a person types: the reader never waits on the chat, so printing (which
    // waits on the reader while a line is being edited) can never wait on itself.
    let (lines_tx, lines_rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let config = Config::builder()
            .max_history_size(HISTORY)
            .ok()
            .map(|c| c.history_ignore_dups(true))
            .and_then(Result::ok)
            .unwrap_or_default()
            .bracketed_paste(true)
            .build();
        let Ok(mut editor) = DefaultEditor::with_config(config) else {
            let _ = ready_tx.send(None);
            return;
        };
        let ending = Arc::new(Ending::default());
        match editor.create_external_printer() {
            Ok(p) => {
                let out: Box<dyn ExternalPrinter + Send> = Box::new(p);
                let printer = Printer {
                    out: Mutex::new(out),
                    ending: ending.clone(),
                };
                let _ = ready_tx.send(Some(printer));
            }
            Err(_) => {
                let _ = ready_tx.send(None);
                return;
            }
        }
        read_lines(&mut editor, &lines_tx, &Prompt(ending.clone()));
        ending.settle();
    });
    let printer = ready_rx.recv().ok().flatten()?;
    Some((printer, lines_rx))
}

/// Reads lines until the user leaves or the chat stops listening.
fn read_lines(editor: &mut DefaultEditor, lines: &mpsc::UnboundedSender<Typed>, prompt: &Prompt) {
    loop {
        let typed = match editor.readline(prompt) {
            Ok(line) => {
                erase(&line);
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                Typed::Line(line)
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Typed::Quit,
            Err(e) => Typed::Failed(e.to_string()),
        };
        let last = !matches!(typed, Typed::Line(_));
        if lines.send(typed).is_err() || last {
            return;
        }
    }
}

/// Takes the finished line (the prompt and what was typed, over as many rows as it took)
/// off the screen; the cursor is on the row below it.
fn erase(line: &str) {
    let cols = crate::sys::terminal_columns().unwrap_or(80).max(1);
    let rows = rows_taken(line, cols);
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\x1b[{rows}A\r\x1b[J");
    let _ = out.flush();
}

/// Rows the prompt and `line` take on a terminal `cols` wide, as the editor lays them out: a
/// newline starts a row, and a row filled to its last column puts the cursor on the next.
fn rows_taken(line: &str, cols: usize) -> usize {
    line.split('\n')
        .enumerate()
        .map(|(i, part)| {
            let width = part.width() + if i == 0 { PROMPT.len() } else { 0 };
            width / cols + 1
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_width_of_wide_characters_and_newlines() {
        assert_eq!(rows_taken("", 80), 1);
        assert_eq!(rows_taken("hello", 80), 1);
        assert_eq!(rows_taken(&"x".repeat(77), 80), 1);
        // Prompt and text fill the row: the cursor waits on the next.
        assert_eq!(rows_taken(&"x".repeat(78), 80), 2);
        assert_eq!(rows_taken(&"你".repeat(39), 80), 2);
        assert_eq!(rows_taken(&"你".repeat(38), 80), 1);
        assert_eq!(rows_taken("a\nb\nc", 80), 3);
    }
}
