//! The seed's UDP time service: a datagram holds a strftime format, the answer is the local
//! time in that format (UTF-8); an empty datagram asks for `%Y-%m-%d %X`.
//!
//! Unlike the seed, which dies on the first bad format, every request gets an answer: a bad
//! one gets a single line `error: ...`. Formatting is chrono's; the format and the answer are
//! both bounded so one datagram cannot make the server build a huge reply.
use std::borrow::Cow;
use std::fmt::{self, Write};
use std::net::SocketAddr;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local};

use crate::server::DatagramService;

/// The format an empty request asks for, as in the seed.
pub const DEFAULT_FORMAT: &str = "%Y-%m-%d %X";

/// Longest format accepted, in bytes.
pub const MAX_FORMAT: usize = 1024;

/// Longest answer sent, in bytes. chrono's widest specifier (`%+`) is 32 bytes for 2, so a
/// format within [`MAX_FORMAT`] only reaches this by repeating wide specifiers on purpose.
pub const MAX_ANSWER: usize = 8192;

/// Why a request gets an `error: ...` answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The request is not UTF-8.
    #[error("format is not valid UTF-8")]
    NotUtf8,
    /// The request is longer than [`MAX_FORMAT`].
    #[error("format is {0} bytes; the limit is {MAX_FORMAT}")]
    TooLong(usize),
    /// chrono does not know a specifier.
    #[error("invalid format: unknown or incomplete specifier {0:?}")]
    BadSpecifier(String),
    /// The answer would pass [`MAX_ANSWER`].
    #[error("answer would be longer than {MAX_ANSWER} bytes")]
    AnswerTooLong,
}

/// `now` in the format `request` holds (the default when it is empty).
pub fn answer(request: &[u8], now: &DateTime<Local>) -> Result<String, FormatError> {
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
    let mut out = Bounded(String::new());
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

/// A `String` that refuses to grow past [`MAX_ANSWER`].
struct Bounded(String);

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.0.len() + s.len() > MAX_ANSWER {
            return Err(fmt::Error);
        }
        self.0.push_str(s);
        Ok(())
    }
}

/// The datagram side of the service.
pub struct StrftimeService;

impl DatagramService for StrftimeService {
    fn respond<'a>(&mut self, request: &'a mut [u8], peer: SocketAddr) -> Option<Cow<'a, [u8]>> {
        let reply = match answer(request, &Local::now()) {
            Ok(text) => text,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bad time request");
                format!("error: {e}")
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

    proptest! {
        #[test]
        fn any_request_gets_a_bounded_answer_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(text) = answer(&bytes, &at()) {
                prop_assert!(text.len() <= MAX_ANSWER);
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
