//! Making text from others safe to show on a terminal: no escape sequence from a peer ever
//! reaches the screen of another.
use std::borrow::Cow;

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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escapes_and_bad_utf8_are_neutralised() {
        assert_eq!(sanitize(b"\x1b[2Jhi"), "^[[2Jhi");
        assert_eq!(sanitize(b"a\tb\x7f\x07"), "a\tb^?^G");
        assert_eq!(sanitize(b"\xff ok"), "\u{fffd} ok");
        assert_eq!(sanitize("x\u{9b}31m".as_bytes()), "x\u{fffd}31m");
        assert!(matches!(sanitize(b"plain"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn sanitized_text_has_no_controls(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = sanitize(&raw);
            prop_assert!(!s.chars().any(|c| c.is_control() && c != '\t'));
        }
    }
}
