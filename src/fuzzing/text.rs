//! Line and text decoders: chat lines, the files receiver's resume state, the HTTP client's
//! URL and the chat page's request checks, and `taojie ipcalc -` input.
use super::split_first;
use crate::chat::line;
use crate::files::partial::{resume_point, state_bytes};
use crate::files::protocol::FileHeader;
use crate::files::tree::{SEGMENT, TreeHasher};
use crate::framing::lines::{Piece, Splitter};
use crate::ipcalc::{self, IpcalcArgs, parse};
use crate::web::access;

/// Splits a chat stream into lines (the first byte chooses the limit, 1–64, and the size of
/// the reads): the pieces must not depend on how the stream was cut, no line may pass the
/// limit, and every line shown must carry no control character.
pub fn chat_lines(data: &[u8]) {
    let (b, data) = split_first(data);
    let max = usize::from(b & 0x3f) + 1;
    let read = usize::from(b >> 6) * 7 + 1;
    let whole = pieces(max, [data]);
    assert_eq!(
        whole,
        pieces(max, data.chunks(read)),
        "lines depend on the reads"
    );
    for p in whole.iter().flatten() {
        assert!(p.len() <= max, "a line longer than the limit");
        let shown = crate::tty::sanitize(p);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\t'),
            "a control character reaches the terminal"
        );
        if line::valid_name(&shown).is_ok() {
            assert!(!line::name_keys(&shown).is_empty());
        }
    }
}

/// The lines (`None` for an overlong one) of `reads`, fed in turn.
fn pieces<'a>(max: usize, reads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Option<Vec<u8>>> {
    let mut s = Splitter::new(max);
    let mut out = Vec::new();
    for r in reads {
        s.feed(r, |p| {
            out.push(match p {
                Piece::Line(l) => Some(l.to_vec()),
                Piece::TooLong => None,
            })
        });
    }
    out.extend(s.finish().map(Some));
    out
}

/// Reads a resume state file for a header the first 16 bytes choose (size below 64 segments,
/// mtime); with the next byte odd the header's own stamp is put in front of the rest. The
/// resume point must be one the sender accepts, the hash state must agree with it, and the
/// state written for those segments must read back the same.
pub fn files_state(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<17>() else {
        return;
    };
    let size = u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) % (64 * SEGMENT);
    let header = FileHeader {
        name: "f".into(),
        size,
        mode: 0o644,
        mtime_ns: i64::from_le_bytes(head[8..16].try_into().expect("8 bytes")),
    };
    let state = if head[16] & 1 == 1 {
        [state_bytes(&header, &[]), rest.to_vec()].concat()
    } else {
        rest.to_vec()
    };
    let (cvs, held) = resume_point(&state, &header);
    assert!(
        TreeHasher::valid_offset(size, held),
        "resuming a {size}-byte file at {held}, which the sender refuses"
    );
    let hasher = TreeHasher::resume(size, cvs.clone());
    assert_eq!(hasher.position(), held);
    if held == size {
        let _ = hasher.root();
    }
    assert_eq!(
        resume_point(&state_bytes(&header, &cvs), &header),
        (cvs, held),
        "the state written reads back"
    );
}

/// Lines of text as the HTTP side sees them: a URL for `taojie http` (first line), and a chat
/// page request's `Origin` (second), `Host` (third) and query (fourth). A URL that parses
/// parses again to itself without credentials, and the raw request built from it has exactly
/// the header lines it writes.
pub fn http(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or_default();
    let (url, origin, host, query) = (next(), next(), next(), next());
    if let Ok((url, auth)) = crate::http::parse_url(url) {
        assert!(url.username().is_empty() && url.password().is_none());
        let (again, none) = crate::http::parse_url(url.as_str()).expect("a parsed URL parses");
        assert_eq!((&again, none), (&url, None), "parse(url) twice");
        for masked in [false, true] {
            let req = crate::http::raw::request_bytes(&url, auth.as_ref(), masked);
            let lines = req.windows(2).filter(|w| w == b"\r\n").count();
            assert_eq!(
                lines,
                4 + usize::from(auth.is_some()),
                "header lines injected"
            );
            assert!(!req.contains(&b'\0'));
        }
    }
    let _ = access::origin_ok(Some(origin), host);
    let _ = access::host_is_loopback(host);
    if let Some(token) = access::query_param(Some(query), "token") {
        let key = crate::auth::Key::from_bytes(b"fuzz key").expect("a key");
        let auth = crate::secure::ServerAuth {
            psk: Some(key),
            ..Default::default()
        };
        let t =
            access::Token::from_auth(&auth, crate::chat::web::TOKEN_LABEL).expect("a keyed token");
        assert!(!t.check(token) || token.eq_ignore_ascii_case(&t.hex()));
    }
}

/// `taojie ipcalc -` input (JSON answers when the first byte is odd). Lines asking for a
/// `--limit` are skipped: a user who asks for a billion subnets gets them, slowly, on purpose.
/// Each line is also read as one address, which must print and parse back to itself.
pub fn ipcalc(data: &[u8]) {
    let (mode, data) = split_first(data);
    if data.windows(5).any(|w| w.eq_ignore_ascii_case(b"limit")) {
        return;
    }
    let args = IpcalcArgs {
        addrs: vec!["-".into()],
        mask: None,
        split: None,
        limit: Some(256),
        json: mode & 1 == 1,
    };
    let _ = ipcalc::batch(&args, data, &mut std::io::sink());
    for l in String::from_utf8_lossy(data).lines() {
        if let Ok(input) = parse::input(l) {
            let shown = input.addr.to_string();
            assert_eq!(parse::address(&shown), Ok(input.addr), "parse(show(addr))");
            if let Some(prefix) = input.prefix {
                assert!(prefix <= parse::max_prefix(input.addr));
            }
        }
    }
}
