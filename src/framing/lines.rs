//! Lines from the wire: splitting a byte stream into lines no longer than a limit — the one
//! splitter for every place that reads lines from a peer (the chat broker and its client, the
//! chat page's relay). [`crate::tty::sanitize()`] makes a line safe to show.
//!
//! The splitter keeps nothing while a connection sits between lines: complete lines are
//! handed out as slices of the caller's (per-thread) read buffer, and only the unfinished tail
//! of a read is copied, never more than the limit.

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

    proptest! {
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
