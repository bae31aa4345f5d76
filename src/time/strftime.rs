//! The seed's UDP time service: a datagram holds a strftime format, the answer is the local
//! time in that format (UTF-8); an empty datagram asks for `%Y-%m-%d %X`.
//!
//! Unlike the seed, which dies on the first bad format, every request gets an answer: a bad
//! one gets a single line `error: ...`. Formatting is chrono's; the format and the answer are
//! both bounded so one datagram cannot make the server build a huge reply.
//!
//! A source address can be forged, so the answer is no weapon either: at most
//! [`answer_cap`] bytes, so that the answer's datagram (headers and all) is at most twice the
//! request's, and a few answers a second per source address ([`PER_SOURCE_RATE`]).
use std::borrow::Cow;
use std::fmt::{self, Write};
use std::net::SocketAddr;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local};

use crate::server::{DatagramService, PerSource};

/// The format an empty request asks for, as in the seed.
pub const DEFAULT_FORMAT: &str = "%Y-%m-%d %X";

/// Longest format accepted, in bytes.
pub const MAX_FORMAT: usize = 1024;

/// Longest answer sent, in bytes. chrono's widest specifier (`%+`) is 32 bytes for 2, so a
/// format within [`MAX_FORMAT`] only reaches this by repeating wide specifiers on purpose.
pub const MAX_ANSWER: usize = 8192;

/// Answers a second per source address, after a burst of [`PER_SOURCE_BURST`].
pub const PER_SOURCE_RATE: f64 = 20.0;
/// Answers one source address may have at once.
pub const PER_SOURCE_BURST: f64 = 40.0;

/// The longest answer to a request of `len` bytes: twice the request and one IP and UDP
/// header more, so that the answer's datagram is at most twice the request's; the seed's
/// empty request (`%Y-%m-%d %X`, 19 bytes) may have 28.
pub fn answer_cap(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(28).min(MAX_ANSWER)
}

/// Why a request gets an `error: ...` answer. The texts are short: an error answers small
/// requests too, within [`answer_cap`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The request is not UTF-8.
    #[error("invalid format: not UTF-8")]
    NotUtf8,
    /// The request is longer than [`MAX_FORMAT`].
    #[error("format over {MAX_FORMAT} bytes")]
    TooLong(usize),
    /// chrono does not know a specifier.
    #[error("invalid format {0}")]
    BadSpecifier(String),
    /// The answer would pass [`MAX_ANSWER`], or twice the request ([`answer_cap`]).
    #[error("answer too long")]
    AnswerTooLong,
}

/// `now` in the format `request` holds (the default when it is empty), at most
/// [`MAX_ANSWER`] bytes.
pub fn answer(request: &[u8], now: &DateTime<Local>) -> Result<String, FormatError> {
    answer_within(request, now, MAX_ANSWER)
}

/// Like [`answer`], with an answer of at most `cap` bytes.
pub fn answer_within(
    request: &[u8],
    now: &DateTime<Local>,
    cap: usize,
) -> Result<String, FormatError> {
    if request.len() > MAX_FORMAT {
        return Err(FormatError::TooLong(request.len()));
    }
    let format = std::str::from_utf8(request).map_err(|_| FormatError::NotUtf8)?;
    let format = if format.is_empty() {
        DEFAULT_FORMAT
    } else {
        format
    };
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.contains(&Item::Error) {
        return Err(FormatError::BadSpecifier(bad_specifier(format)));
    }
    let mut out = Bounded(String::new(), cap.min(MAX_ANSWER));
    match write!(out, "{}", now.format_with_items(items.iter())) {
        Ok(()) => Ok(out.0),
        Err(_) => Err(FormatError::AnswerTooLong),
    }
}

/// The text of the first specifier chrono rejects. The lenient parser walks the format the
/// same way but yields the rejected text as a literal, so walking both side by side finds it.
fn bad_specifier(format: &str) -> String {
    StrftimeItems::new(format)
        .zip(StrftimeItems::new_lenient(format))
        .find_map(|(strict, lenient)| match (strict, lenient) {
            (Item::Error, Item::Literal(text)) => Some(text.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "%".to_string())
}

/// A `String` that refuses to grow past its cap.
struct Bounded(String, usize);

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.0.len() + s.len() > self.1 {
            return Err(fmt::Error);
        }
        self.0.push_str(s);
        Ok(())
    }
}

/// The datagram side of the service, with its per-source rate limit.
pub struct StrftimeService {
    limit: PerSource,
}

impl Default for StrftimeService {
    fn default() -> Self {
        StrftimeService {
            limit: PerSource::new(PER_SOURCE_RATE, PER_SOURCE_BURST),
        }
    }
}

impl DatagramService for StrftimeService {
    fn respond<'a>(&mut self, request: &'a mut [u8], peer: SocketAddr) -> Option<Cow<'a, [u8]>> {
        if !self.limit.allow(peer.ip(), std::time::Instant::now()) {
            tracing::debug!(%peer, "time request over the per-address rate; not answered");
            return None;
        }
        let cap = answer_cap(request.len());
        let reply = match answer_within(request, &Local::now(), cap) {
            Ok(text) => text,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bad time request");
                let mut text = format!("error: {e}");
                let mut end = text.len().min(cap);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text
            }
        };
        Some(Cow::Owned(reply.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at() -> DateTime<Local> {
        Local.with_ymd_and_hms(2024, 3, 9, 7, 5, 3).unwrap()
    }

    #[test]
    fn formats_as_strftime_does() {
        let cases: &[(&[u8], &str)] = &[
            (b"%Y", "2024"),
            (b"%H:%M:%S", "07:05:03"),
            (b"", "2024-03-09 07:05:03"),
            ("%Y年%m月".as_bytes(), "2024年03月"),
            (b"100%% at %d", "100% at 09"),
        ];
        for (format, want) in cases {
            assert_eq!(answer(format, &at()).unwrap(), *want, "{format:?}");
        }
    }

    #[test]
    fn bad_formats_are_errors_with_the_culprit() {
        let e = |f: &[u8]| answer(f, &at()).unwrap_err();
        assert_eq!(e(b"%Y %Q"), FormatError::BadSpecifier("%Q".into()));
        assert_eq!(e(b"%Y%"), FormatError::BadSpecifier("%".into()));
        assert_eq!(e(b"\xff\xfe%Y"), FormatError::NotUtf8);
        assert_eq!(
            e(&[b'x'; MAX_FORMAT + 1]),
            FormatError::TooLong(MAX_FORMAT + 1)
        );
        assert_eq!(
            e("%+".repeat(MAX_FORMAT / 2).as_bytes()),
            FormatError::AnswerTooLong
        );
        assert!(answer(&[b'x'; MAX_FORMAT], &at()).is_ok());
    }

    #[test]
    fn answers_are_at_most_twice_the_request_on_the_wire() {
        assert_eq!(answer_cap(0), 28);
        // The seed's default and everyday formats fit.
        for f in ["", "%Y", "%c", "%+", "%A", "%Y年%m月%d日", "%Y-%m-%d %X"] {
            let cap = answer_cap(f.len());
            assert!(answer_within(f.as_bytes(), &at(), cap).is_ok(), "{f}");
        }
        // 460 bytes asking for about 5.5 KB: refused, in a short line.
        let wide = "%c".repeat(230);
        let cap = answer_cap(wide.len());
        assert_eq!(
            answer_within(wide.as_bytes(), &at(), cap),
            Err(FormatError::AnswerTooLong)
        );
        let mut s = StrftimeService::default();
        let peer: SocketAddr = "10.0.0.1:5".parse().unwrap();
        for req in [&b"%Q"[..], b"\xff", b"%", b"", &[b'%'; 2000]] {
            let mut buf = req.to_vec();
            let reply = s.respond(&mut buf, peer).unwrap();
            assert!(reply.len() <= answer_cap(req.len()), "{req:?}: {reply:?}");
        }
    }

    #[test]
    fn each_source_gets_its_burst_and_no_more_at_once() {
        let mut s = StrftimeService::default();
        let a: SocketAddr = "10.0.0.1:5".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5".parse().unwrap();
        let answered = (0..200)
            .filter(|_| s.respond(&mut b"%Y".to_vec(), a).is_some())
            .count();
        assert!(
            answered >= PER_SOURCE_BURST as usize && answered < 60,
            "{answered}"
        );
        assert!(s.respond(&mut b"%Y".to_vec(), b).is_some());
    }

    proptest! {
        #[test]
        fn any_request_gets_a_bounded_answer_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(text) = answer(&bytes, &at()) {
                prop_assert!(text.len() <= MAX_ANSWER);
            }
            let cap = answer_cap(bytes.len());
            if let Ok(text) = answer_within(&bytes, &at(), cap) {
                prop_assert!(text.len() <= cap);
            }
        }

        #[test]
        fn any_specifier_soup_gets_an_answer_or_an_error(s in "(%[-_0#:.369]{0,3}.?|[a-z年 ]){0,40}") {
            if let Ok(text) = answer(s.as_bytes(), &at()) {
                prop_assert!(text.len() <= MAX_ANSWER);
            }
        }
    }
}
