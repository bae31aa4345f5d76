//! What the files page reads off the wire: a request's path, a `Range` header, a WebDAV body
//! and its `If`/`Lock-Token`/`Timeout`/`Content-Digest` headers, and a share link's token.
use super::split_first;
use crate::files::web::dav::{lock, xml};
use crate::files::web::download::{Wanted, parse_range};
use crate::files::web::{path, share, upload};

/// The first byte picks the part (its value mod 5), the rest is its input:
/// 0. a request path: a name that comes out has no empty, `.` or `..` part, does not start
///    with `/`, holds no backslash or control character, and its link names it again;
/// 1. a `Range` header (after an 8-byte big-endian file size): a part served lies inside;
/// 2. a WebDAV body: read or refused, and a tree read is written without panicking;
/// 3. header values (one a line: `If`, `Lock-Token`, `Timeout`, `Content-Digest`): the lock
///    tokens found are `opaquelocktoken:` ones, the timeout stays within its bounds;
/// 4. a share link's token: never valid, since the fuzzer cannot sign with the key.
pub fn files_web(data: &[u8]) {
    let (mode, data) = split_first(data);
    match mode % 5 {
        0 => request_path(&String::from_utf8_lossy(data)),
        1 => range(data),
        2 => {
            if let Ok(Some(tree)) = xml::parse(data) {
                let _ = tree.to_xml();
            }
        }
        3 => headers(&String::from_utf8_lossy(data)),
        _ => share_token(&String::from_utf8_lossy(data)),
    }
}

fn request_path(rest: &str) {
    let Ok(target) = path::parse(rest) else {
        return;
    };
    let Some(name) = target.name else { return };
    let s = name.as_str();
    assert!(!s.starts_with('/'), "{s:?} from {rest:?}");
    assert!(
        !s.contains('\\') && !s.chars().any(char::is_control),
        "{s:?}"
    );
    for part in s.split('/') {
        assert!(!matches!(part, "" | "." | ".."), "{s:?} from {rest:?}");
    }
    let link = path::href("/", s, target.slash);
    let again = path::parse(&link[1..]).expect("a link to a name parses");
    assert_eq!(again.name.as_ref(), Some(&name), "{link}");
}

fn range(data: &[u8]) {
    let (size, header) = match data.split_first_chunk::<8>() {
        Some((size, header)) => (u64::from_be_bytes(*size), header),
        None => (0, data),
    };
    let header = String::from_utf8_lossy(header);
    if let Wanted::Part(a, b) = parse_range(&header, size) {
        assert!(a <= b && b < size, "{header:?} of {size}: {a}-{b}");
    }
}

fn headers(text: &str) {
    let mut lines = text.split('\n');
    let mut h = hyper::HeaderMap::new();
    for name in ["if", "lock-token", "timeout", "content-digest"] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(lines.next().unwrap_or_default()) {
            h.insert(name, v);
        }
    }
    for t in lock::tokens(&h) {
        assert!(
            t.starts_with("opaquelocktoken:") && !t.contains('>'),
            "{t:?}"
        );
    }
    assert!((1..=lock::MAX_TIMEOUT).contains(&lock::timeout(&h)));
    let _ = upload::sha256_digest(&h);
}

fn share_token(token: &str) {
    let key = crate::auth::Key::from_bytes(b"fuzz key").expect("a key");
    let auth = crate::secure::ServerAuth {
        psk: Some(key),
        ..Default::default()
    };
    let key = crate::web::Token::from_auth(&auth, b"files").expect("a keyed token");
    assert!(
        share::check(&key, token, 0).is_err(),
        "{token:?} was accepted"
    );
}
