//! How a post travels between brokers: its subject names the kind (chat lines, kept in the
//! history stream, or notices, not kept) and the room; its payload is one header line naming
//! the broker that sent it, then the lines exactly as members get them.
//!
//! ```text
//! subject  taojie.room.line.<room in hex>     (or taojie.room.note.<room in hex>)
//! payload  TJ1 <broker id> <lines>\n<the lines, each ending in \n>
//! ```
//!
//! A message from NATS is input like any other: [`decode`] checks every part (the room is a
//! valid name, the lines are whole, UTF-8, free of control characters, no longer than a
//! member's line may be, as many as the header says, and shaped as chat lines or notices) and
//! refuses anything else.
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::chat::line::{MAX_NAME, valid_name};
use crate::chat::post::Post;

/// Prefix of every room subject.
pub const ROOMS: &str = "taojie.room";
/// What a broker subscribes to: every room's lines and notices.
pub const ALL_ROOMS: &str = "taojie.room.*.*";
/// The history stream's subjects: chat lines only.
pub const KEPT: &str = "taojie.room.line.*";
/// Lines one message may carry (a broker's post is one client read's worth).
const MAX_LINES: usize = 4096;

/// The subject a post is published on.
pub fn subject(post: &Post) -> String {
    let kind = if post.keep { "line" } else { "note" };
    let mut s = String::with_capacity(ROOMS.len() + 6 + 2 * post.room.len());
    s.push_str(ROOMS);
    s.push('.');
    s.push_str(kind);
    s.push('.');
    for b in post.room.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The payload carrying `post` from broker `from`.
pub fn encode(from: &str, post: &Post) -> Bytes {
    let head = format!("TJ1 {from} {}\n", post.count);
    let mut out = BytesMut::with_capacity(head.len() + post.lines.len());
    out.put_slice(head.as_bytes());
    out.put_slice(&post.lines);
    out.freeze()
}

/// A post from another broker, checked.
#[derive(Debug)]
pub struct Remote {
    /// The broker that sent it.
    pub from: String,
    /// The post, as a notice-less local post would be (no writer here, no member it is about).
    pub post: Post,
}

/// Why a message was refused (logged at debug level, never sent anywhere).
pub type Refused = &'static str;

/// Checks and takes apart one message; `max_line` is the longest text a member may send.
pub fn decode(subject: &str, payload: &Bytes, max_line: usize) -> Result<Remote, Refused> {
    let rest = subject
        .strip_prefix(ROOMS)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or("not a room subject")?;
    let (kind, hex) = rest.split_once('.').ok_or("no room in the subject")?;
    let keep = match kind {
        "line" => true,
        "note" => false,
        _ => return Err("unknown kind"),
    };
    let room = unhex(hex).ok_or("room not in hex")?;
    let room = String::from_utf8(room).map_err(|_| "room not UTF-8")?;
    valid_name(&room).map_err(|_| "not a valid room name")?;

    let nl = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header")?;
    let head = std::str::from_utf8(&payload[..nl]).map_err(|_| "header not UTF-8")?;
    let mut parts = head.split(' ');
    if parts.next() != Some("TJ1") {
        return Err("not a taojie post");
    }
    let from = parts
        .next()
        .filter(|f| is_broker_id(f))
        .ok_or("bad broker id")?;
    let count: usize = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or("bad line count")?;
    if parts.next().is_some() {
        return Err("header too long");
    }
    if count == 0 || count > MAX_LINES {
        return Err("line count out of range");
    }
    let lines = payload.slice(nl + 1..);
    check_lines(&lines, count, keep, max_line)?;
    Ok(Remote {
        from: from.to_string(),
        post: Post {
            room: Arc::from(room),
            lines,
            count,
            from: None,
            keep,
            about: None,
        },
    })
}

/// Whole lines, `count` of them, each a chat line (`<name> text`, `* name action`) or a
/// notice (`*** text`) no longer than a member's line with its name around it.
fn check_lines(lines: &[u8], count: usize, keep: bool, max_line: usize) -> Result<(), Refused> {
    if lines.last() != Some(&b'\n') {
        return Err("last line unfinished");
    }
    let text = std::str::from_utf8(lines).map_err(|_| "lines not UTF-8")?;
    // The name (in bytes, up to 4 per character), the brackets or stars and the space.
    let longest = max_line + 4 * MAX_NAME + 8;
    let mut n = 0;
    for line in text[..text.len() - 1].split('\n') {
        n += 1;
        if n > count {
            return Err("more lines than the header says");
        }
        if line.is_empty() || line.len() > longest {
            return Err("line empty or too long");
        }
        if line
            .chars()
            .any(|c| (c.is_control() && c != '\t') || c == '\x7f')
        {
            return Err("control character in a line");
        }
        let shaped = if keep {
            line.starts_with('<') || (line.starts_with("* ") && !line.starts_with("* *"))
        } else {
            line.starts_with("*** ")
        };
        if !shaped {
            return Err("line of the wrong shape");
        }
    }
    if n != count {
        return Err("fewer lines than the header says");
    }
    Ok(())
}

/// A broker's id: 16 lower-case hex digits.
pub fn is_broker_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bytes from lower-case hex; `None` unless every digit is one.
pub fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 8 * MAX_NAME {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::post::notice;

    const ME: &str = "0123456789abcdef";

    fn post(lines: &str, count: usize, keep: bool) -> Post {
        Post {
            room: "dev".into(),
            lines: Bytes::from(lines.to_string()),
            count,
            from: Some(7),
            keep,
            about: None,
        }
    }

    #[test]
    fn a_post_comes_through_whole() {
        let p = post("<ann> hi\n* ann waves\n", 2, true);
        let got = decode(&subject(&p), &encode(ME, &p), 100).unwrap();
        assert_eq!(got.from, ME);
        assert_eq!(&*got.post.room, "dev");
        assert_eq!(got.post.lines, p.lines);
        assert_eq!(
            (got.post.count, got.post.keep, got.post.from),
            (2, true, None)
        );
        let n = notice(&"dev".into(), "ann joined dev");
        let got = decode(&subject(&n), &encode(ME, &n), 100).unwrap();
        assert!(!got.post.keep);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = post("<ann> hi\n", 1, true);
        let subj = subject(&good);
        let cases: Vec<(String, Bytes)> = vec![
            ("taojie.room.line.zz".into(), encode(ME, &good)),
            ("taojie.room.line.2f2f".into(), encode(ME, &good)),
            ("taojie.room.other.646576".into(), encode(ME, &good)),
            (subj.clone(), Bytes::from_static(b"")),
            (subj.clone(), Bytes::from_static(b"TJ1 nothex 1\n<a> b\n")),
            (
                subj.clone(),
                Bytes::from_static(b"TJ2 0123456789abcdef 1\n<a> b\n"),
            ),
            (subj.clone(), encode(ME, &post("<ann> hi\n", 2, true))),
            (
                subj.clone(),
                encode(ME, &post("<ann> hi\n<ann> ho\n", 1, true)),
            ),
            (subj.clone(), encode(ME, &post("<ann> hi", 1, true))),
            (
                subj.clone(),
                encode(ME, &post("*** fake notice\n", 1, true)),
            ),
            (subj.clone(), encode(ME, &post("<ann> \x1b[2J\n", 1, true))),
            (
                subj.clone(),
                encode(ME, &post(&format!("<ann> {}\n", "x".repeat(300)), 1, true)),
            ),
            (
                subj.clone(),
                Bytes::from_static(b"TJ1 0123456789abcdef 1\n<a> \xff\n"),
            ),
            (subj, Bytes::from_static(b"TJ1 0123456789abcdef 0\n")),
        ];
        for (subject, payload) in cases {
            assert!(
                decode(&subject, &payload, 100).is_err(),
                "{subject} {payload:?} accepted"
            );
        }
    }
}
