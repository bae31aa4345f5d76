//! A file's bytes over HTTP: `GET` and `HEAD`, one `Range` (so `curl -C -`, `curl -r` and
//! browsers resume), `If-Range`, `If-None-Match`. The file is opened once beneath the root and
//! every byte sent is that descriptor's: with sendfile(2) on the page's own connections
//! ([`zerocopy`]), else read by a thread a few chunks ahead of the network.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::Web;
use super::body::io_reply;
use super::body::{self, Feed, Reply, plain};
use super::disk::blocking;
use super::zerocopy::{self, Outbox};
use crate::files::names::RelName;

/// Bytes per read, and chunks read ahead of the network.
const CHUNK: usize = 512 * 1024;
const AHEAD: usize = 8;

/// The policy on a file's own bytes: whatever a file holds (a page, an SVG with a script),
/// it runs nothing and reaches nothing in the page's origin.
const FILE_POLICY: &str = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; \
                           style-src 'unsafe-inline'; frame-ancestors 'none'";

/// `GET`/`HEAD` of the file `name` (`attachment`: offered as a download, not shown).
pub async fn reply<B>(
    req: &Request<B>,
    web: &Arc<Web>,
    name: Option<RelName>,
    attachment: bool,
) -> Reply {
    let Some(name) = name else {
        return plain(StatusCode::NOT_FOUND, "no such file\n");
    };
    let root = web.state.root.clone();
    let n = name.clone();
    let file = match blocking(move || {
        let f = root.open_file(&n)?;
        let md = f.metadata()?;
        Ok((f, md))
    })
    .await
    {
        Ok(f) => f,
        Err(e) => return io_reply(&e),
    };
    let (file, md) = file;
    let size = md.len();
    let etag = format!(
        "\"{:x}-{:x}-{:x}\"",
        md.ino(),
        size,
        md.mtime_nsec() + md.mtime() * 1_000_000_000
    );
    let modified = http_date(md.mtime());
    let h = req.headers();
    if if_none_match(h, &etag) {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r.headers_mut().insert(header::ETAG, value(&etag));
        return r;
    }
    let wanted = match h.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if if_range_ok(h, &etag, &modified) => parse_range(range, size),
        _ => Wanted::All,
    };
    let (status, start, len) = match wanted {
        Wanted::All => (StatusCode::OK, 0, size),
        Wanted::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Wanted::Unsatisfiable => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
            return r;
        }
    };
    let body = if req.method() == Method::HEAD {
        body::empty()
    } else if let Some(outbox) = req.extensions().get::<Outbox>() {
        zerocopy::body(outbox, file, start, len)
    } else {
        let (tx, body) = body::streamed(AHEAD, Some(len));
        tokio::task::spawn_blocking(move || feed(file, start, len, tx));
        body
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_LENGTH, value(&len.to_string()));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        headers.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{end}/{size}")),
        );
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, value(&etag));
    headers.insert(header::LAST_MODIFIED, value(&modified));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name.file_name())),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&disposition(name.file_name(), attachment)),
    );
    file_policy(headers);
    r
}

/// The policy headers of a response carrying a file's own bytes.
pub fn file_policy(h: &mut HeaderMap) {
    crate::web::reply::add_security_headers(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_POLICY),
    );
}

/// Reads `len` bytes from `start` into the body, on a blocking thread. Each chunk is read
/// into a fresh buffer that is never zeroed first (`read_to_end` fills its spare room), the
/// descriptor's own offset moving through the file: it is this feed's alone.
fn feed(file: File, start: u64, len: u64, tx: Feed) {
    let mut file = file;
    if let Err(e) = file.seek(SeekFrom::Start(start)) {
        let _ = tx.blocking_send(Err(e));
        return;
    }
    let mut left = len;
    while left > 0 {
        let n = CHUNK.min(left as usize);
        let mut buf = Vec::with_capacity(n);
        match (&file).take(n as u64).read_to_end(&mut buf) {
            Ok(got) if got < n => return, // the file shrank: the response is cut, not padded
            Ok(_) => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        left -= n as u64;
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return; // the client went away
        }
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file (no range, several ranges, or one this server does not parse).
    All,
    /// Bytes `a..=b`.
    Part(u64, u64),
    /// A range wholly past the end.
    Unsatisfiable,
}

/// Parses `Range: bytes=A-B | A- | -N` (one range; several are answered with the whole file).
pub fn parse_range(header: &str, size: u64) -> Wanted {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::All;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(size.saturating_sub(n), size - 1),
            None => Wanted::All,
        },
        (a, "") => match num(a) {
            Some(a) if a < size => Wanted::Part(a, size - 1),
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::All,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a > b => Wanted::All,
            (Some(a), Some(_)) if a >= size => Wanted::Unsatisfiable,
            (Some(a), Some(b)) => Wanted::Part(a, b.min(size - 1)),
            _ => Wanted::All,
        },
    }
}

fn if_none_match(h: &HeaderMap, etag: &str) -> bool {
    h.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*")
}

/// Whether a `Range` still applies: no `If-Range`, or one naming this very version.
fn if_range_ok(h: &HeaderMap, etag: &str, modified: &str) -> bool {
    match h.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v.trim() == etag || v.trim() == modified,
    }
}

/// An HTTP date (RFC 9110, IMF-fixdate) for Unix seconds.
pub fn http_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Content-Disposition` for `name`: an ASCII stand-in and the UTF-8 name (RFC 6266).
pub fn disposition(name: &str, attachment: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let kind = if attachment { "attachment" } else { "inline" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The type a file is served as, by its extension; text as UTF-8.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "md" | "log" | "csv" | "rs" | "py" | "c" | "h" | "toml" | "yaml" | "yml"
        | "ini" | "sh" | "conf" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Wanted::*;
        let cases = [
            ("bytes=0-0", 10, Part(0, 0)),
            ("bytes=2-", 10, Part(2, 9)),
            ("bytes=-3", 10, Part(7, 9)),
            ("bytes=-30", 10, Part(0, 9)),
            ("bytes=5-100", 10, Part(5, 9)),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=5-2", 10, All),
            ("bytes=0-1,3-4", 10, All),
            ("bytes=x-", 10, All),
            ("items=0-1", 10, All),
            ("bytes=+1-2", 10, All),
        ];
        for (h, size, want) in cases {
            assert_eq!(parse_range(h, size), want, "{h} of {size}");
        }
    }

    #[test]
    fn names_in_headers_stay_one_header() {
        let d = disposition("a\"b\r\n名.txt", true);
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(d.starts_with("attachment; filename=\"a_b___.txt\"; filename*=UTF-8''"));
        assert!(HeaderValue::from_str(&d).is_ok());
    }

    proptest::proptest! {
        /// Whatever the header says, a part served lies inside the file and is not empty.
        #[test]
        fn a_range_served_lies_inside_the_file(
            header in "(bytes|items)=[-0-9, +]{0,24}|\\PC{0,30}",
            size in proptest::prop_oneof![0..64u64, proptest::prelude::any::<u64>()],
        ) {
            if let Wanted::Part(a, b) = parse_range(&header, size) {
                proptest::prop_assert!(a <= b && b < size, "{header:?} of {size}: {a}-{b}");
            }
        }
    }
}
