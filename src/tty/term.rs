//! The terminal side of `taojie chat` and `taojie msg chat`: the terminal in non-canonical mode with no echo, and a
//! one-line editor of our own, so an incoming line is printed above the line being typed and
//! that line is drawn again, whole, under it.
//!
//! The mode is switched with `stty` (no unsafe code, no terminal crate) and put back when the
//! guard drops; Ctrl-C and Ctrl-D on an empty line end the client the same way, so the
//! terminal is always restored.
use std::io::Write;
use std::process::{Command, Stdio};

use unicode_width::UnicodeWidthChar;

/// The prompt in front of the line being typed.
pub const PROMPT: &str = "> ";

/// Puts the terminal back as it was when dropped.
pub struct RawMode {
    saved: String,
}

impl RawMode {
    /// Switches the terminal on stdin to non-canonical, no-echo, no-signal mode; `None` if
    /// `stty` is missing or fails (the client then stays in line mode).
    pub fn enter() -> Option<RawMode> {
        let out = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let saved = String::from_utf8(out.stdout).ok()?.trim().to_string();
        let ok = Command::new("stty")
            .args(["-icanon", "-echo", "-isig", "min", "1", "time", "0"])
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .status();
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K");
        let _ = out.flush();
    }
}

/// What a keystroke did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// A finished line to send.
    Line(String),
    /// Ctrl-C, or Ctrl-D on an empty line: leave.
    Quit,
}

/// The line being typed.
#[derive(Debug, Default)]
pub struct Editor {
    text: String,
    /// Bytes of a UTF-8 character split across reads.
    pending: Vec<u8>,
    /// Inside an escape sequence (arrow keys and the like), which is ignored.
    escape: bool,
}

impl Editor {
    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Applies the bytes of one read from the terminal.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Edit> {
        let mut edits = Vec::new();
        for &b in bytes {
            if self.escape {
                // CSI and SS3 sequences end with a letter or `~`.
                if b.is_ascii_alphabetic() && b != b'O' || b == b'~' {
                    self.escape = false;
                }
                continue;
            }
            match b {
                b'\r' | b'\n' => edits.push(Edit::Line(std::mem::take(&mut self.text))),
                0x7f | 0x08 => {
                    self.text.pop();
                }
                0x15 => self.text.clear(),
                0x03 => edits.push(Edit::Quit),
                0x04 if self.text.is_empty() => edits.push(Edit::Quit),
                0x1b => self.escape = true,
                0x00..=0x1f => {}
                _ => {
                    self.pending.push(b);
                    match std::str::from_utf8(&self.pending) {
                        Ok(s) => {
                            self.text.push_str(s);
                            self.pending.clear();
                        }
                        Err(e) if e.error_len().is_some() || self.pending.len() >= 4 => {
                            self.pending.clear();
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        edits
    }
}

/// Draws the prompt and the line being typed on the current terminal row. A line wider than
/// the terminal is shown by its end, after a `<`: a line that wrapped would leave its first
/// rows behind each time `\r` goes back to draw it again, and garble the screen.
pub fn redraw(out: &mut impl Write, text: &str) {
    let cols = crate::sys::terminal_columns().unwrap_or(80);
    // The last column stays empty: a character there leaves the cursor waiting to wrap.
    let room = cols.saturating_sub(PROMPT.len() + 1);
    let (shown, mark) = match tail(text, room) {
        (all, false) => (all, ""),
        (_, true) => (tail(text, room.saturating_sub(1)).0, "<"),
    };
    let _ = write!(out, "\r\x1b[K{PROMPT}{mark}{shown}");
}

/// The end of `text` that fits in `room` columns, and whether anything before it was left out.
fn tail(text: &str, room: usize) -> (&str, bool) {
    let mut used = 0;
    for (i, c) in text.char_indices().rev() {
        used += columns(c);
        if used > room {
            return (&text[i + c.len_utf8()..], true);
        }
    }
    (text, false)
}

/// Columns a character takes on a terminal (two for East Asian wide ones, none for
/// combining marks).
fn columns(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_edit_the_line() {
        let mut e = Editor::default();
        assert!(e.feed(b"helo\x7flo \xe4\xbd").is_empty());
        assert_eq!(e.text(), "hello ");
        assert_eq!(
            e.feed(b"\xa0\x1b[Dx\r"),
            vec![Edit::Line("hello 你x".into())]
        );
        assert_eq!(e.text(), "");
        e.feed(b"abc\x15d");
        assert_eq!(e.text(), "d");
        assert!(e.feed(b"\x04").is_empty());
        assert_eq!(e.feed(b"\x7f\x04"), vec![Edit::Quit]);
        assert_eq!(e.feed(b"\x03"), vec![Edit::Quit]);
    }

    #[test]
    fn a_long_line_is_shown_by_the_end_that_fits() {
        assert_eq!(tail("hello", 10), ("hello", false));
        assert_eq!(tail("hello", 5), ("hello", false));
        assert_eq!(tail("hello", 3), ("llo", true));
        // Wide characters take two columns: a half-fitting one is left out whole.
        assert_eq!(tail("ab你好", 6), ("ab你好", false));
        assert_eq!(tail("ab你好", 5), ("b你好", true));
        assert_eq!(tail("ab你好", 3), ("好", true));
        assert_eq!(tail("", 0), ("", false));
    }
}
