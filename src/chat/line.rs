//! Lines from the wire: splitting a byte stream into lines no longer than a limit, and making
//! any line safe to show on someone else's terminal.
//!
//! The splitter keeps nothing while a connection sits between lines: complete lines are
//! handed out as slices of the caller's (per-thread) read buffer, and only the unfinished tail
//! of a read is copied, never more than the limit.
use std::borrow::Cow;

/// Default longest line a client may send, in bytes (the newline not counted).
pub const DEFAULT_MAX_LINE: usize = 1024;

/// Longest nickname or room name, in characters.
pub const MAX_NAME: usize = 32;

/// What the splitter found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One whole line, without its newline (a trailing `\r` is removed too).
    Line(&'a [u8]),
    /// A line went past the limit; its bytes up to the next newline are thrown away.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct Splitter {
    max: usize,
    partial: Vec<u8>,
    /// Inside an overlong line: drop bytes until the next newline.
    skipping: bool,
}

impl Splitter {
    /// A splitter for lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Splitter {
            max: max.max(1),
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Feeds `chunk` and calls `each` for every line completed and every overlong line.
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(Piece<'_>)) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            chunk = rest;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.is_empty() {
                if head.len() > self.max {
                    each(Piece::TooLong);
                } else {
                    each(Piece::Line(trim_cr(head)));
                }
            } else if self.partial.len() + head.len() > self.max {
                self.partial = Vec::new();
                each(Piece::TooLong);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                each(Piece::Line(trim_cr(&line)));
            }
        }
        if chunk.is_empty() || self.skipping {
            return;
        }
        if self.partial.len() + chunk.len() > self.max {
            // Refuse as soon as the limit is passed, so a line with no end is never held.
            self.partial = Vec::new();
            self.skipping = true;
            each(Piece::TooLong);
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    /// The unfinished last line at end of stream, if any (a client that sends no final
    /// newline still gets its line through).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.partial);
        (!rest.is_empty() && !self.skipping).then_some(rest)
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Makes a line safe to show on a terminal: invalid UTF-8 becomes U+FFFD, C0 controls (but
/// tab) and DEL are shown in caret notation (`ESC` as `^[`), C1 controls become U+FFFD, so
/// no escape sequence from one client ever reaches another's terminal.
pub fn sanitize(raw: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
    if !text.chars().any(is_unsafe) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\x00'..='\x1f' => {
                out.push('^');
                out.push((c as u8 + b'@') as char);
            }
            '\x7f' => out.push_str("^?"),
            '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t') || c == '\x7f'
}

/// The keys a name is unique by: its confusable skeleton (Unicode TS #39) with case folded,
/// folding first and skeleton first (a capital `I` looks like `l`, its lower case does not),
/// so `аlice` with a Cyrillic `а`, `ALICE` and `aIice` all collide with `alice`, while names
/// in any script stay welcome. Two names clash when any of their keys are equal.
pub fn name_keys(name: &str) -> Vec<String> {
    use unicode_security::confusable_detection::skeleton;
    // `İ` folds to `i` and a combining dot, which looks like `i` alone.
    let undot = |s: String| s.replace("i\u{307}", "i").replace("j\u{307}", "j");
    let folded_first: String = undot(skeleton(&undot(name.to_lowercase())).collect());
    let skeleton_first = undot(skeleton(name).collect::<String>().to_lowercase());
    let skeleton_first: String = undot(skeleton(&skeleton_first).collect());
    if folded_first == skeleton_first {
        vec![folded_first]
    } else {
        vec![folded_first, skeleton_first]
    }
}

/// Checks a nickname or room name: 1 to [`MAX_NAME`] letters, digits or `_-.`, so names can
/// never pose as another line's `<name>` or `***` notice. Letters and digits must be ones
/// Unicode recommends for identifiers (UTS #39's General Security Profile): no invisible
/// ones (U+3164 HANGUL FILLER), none that are another letter with a mark (`ŀ`, `l·` in
/// disguise), no small capitals (`ʟ`), no historic or technical ones.
pub fn valid_name(name: &str) -> Result<(), String> {
    use unicode_security::GeneralSecurityProfile;
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(format!("names are 1 to {MAX_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !("_-.".contains(c) || (c.is_alphanumeric() && c.identifier_allowed())))
    {
        let shown = if c.is_ascii_graphic() {
            format!("{c:?}")
        } else {
            format!("U+{:04X}", u32::from(c))
        };
        return Err(format!(
            "{shown} is not allowed in names (letters and digits fit for names, _ - .)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        let mut s = Splitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |p| {
                out.push(match p {
                    Piece::Line(l) => Some(l.to_vec()),
                    Piece::TooLong => None,
                })
            });
        }
        out
    }

    #[test]
    fn lines_across_chunks_and_overlong_ones() {
        assert_eq!(
            split(5, &[b"ab", b"c\r\nde\n", b"toolong", b"gone\nok\n"]),
            vec![
                Some(b"abc".to_vec()),
                Some(b"de".to_vec()),
                None,
                Some(b"ok".to_vec())
            ]
        );
        assert_eq!(
            split(3, &[b"abcdef\nxy\n"]),
            vec![None, Some(b"xy".to_vec())]
        );
    }

    #[test]
    fn escapes_and_bad_utf8_are_neutralised() {
        assert_eq!(sanitize(b"\x1b[2Jhi"), "^[[2Jhi");
        assert_eq!(sanitize(b"a\tb\x7f\x07"), "a\tb^?^G");
        assert_eq!(sanitize(b"\xff ok"), "\u{fffd} ok");
        assert_eq!(sanitize("x\u{9b}31m".as_bytes()), "x\u{fffd}31m");
        assert!(matches!(sanitize(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn names_that_look_alike_share_a_key() {
        let clash = |a: &str, b: &str| name_keys(a).iter().any(|k| name_keys(b).contains(k));
        assert!(clash("alice", "\u{430}lice"));
        assert!(clash("alice", "ALICE"));
        assert!(clash("alice", "aIice"));
        assert!(clash("paypal", "paypa1"));
        assert!(!clash("alice", "bob"));
        assert!(!clash("小明", "小红"));
    }

    #[test]
    fn names() {
        assert!(valid_name("alice_2").is_ok());
        assert!(valid_name("小红").is_ok());
        assert!(valid_name("").is_err());
        assert!(valid_name("<bob>").is_err());
        assert!(valid_name(&"x".repeat(33)).is_err());
        for ok in [
            "金老板",
            "аlice",
            "José",
            "Ærø",
            "ŁódźBob",
            "İstanbul",
            "Σωκράτης",
            "علي",
        ] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        // Invisible letters, small capitals, an l with a middle dot.
        for bad in [
            "\u{3164}",
            "a\u{3164}",
            "\u{115f}bob",
            "\u{ffa0}",
            "aʟice",
            "aŀice",
        ] {
            let e = valid_name(bad).unwrap_err();
            assert!(e.contains("U+"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_dotted_capital_i_looks_like_an_i() {
        let clash = |a: &str, b: &str| name_keys(a).iter().any(|k| name_keys(b).contains(k));
        assert!(clash("alice", "alİce"));
        assert!(clash("ALICE", "alİce"));
        assert!(!clash("alice", "alce"));
    }

    proptest! {
        #[test]
        fn sanitized_text_has_no_controls(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = sanitize(&raw);
            prop_assert!(!s.chars().any(|c| c.is_control() && c != '\t'));
        }

        #[test]
        fn splitter_never_exceeds_limit_and_matches_split(
            raw in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..5),
            max in 1usize..40,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(raw.len())).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts { chunks.push(&raw[at..c]); at = c; }
            chunks.push(&raw[at..]);
            let got = split(max, &chunks);
            // The reference: every complete line, overlong ones as None.
            let mut want = Vec::new();
            let mut parts: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
            parts.pop();
            for p in parts {
                want.push((p.len() <= max).then(|| trim_cr(p).to_vec()));
            }
            // An unterminated overlong tail is reported early, as one more None.
            let tail = raw.rsplit(|&b| b == b'\n').next().unwrap();
            if raw.last() != Some(&b'\n') && tail.len() > max { want.push(None); }
            prop_assert_eq!(got, want);
        }
    }
}
