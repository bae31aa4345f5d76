//! Plain HTTP forward proxying (RFC 9112 section 3.2.2): a request whose target is in
//! absolute form, `GET http://host[:port]/path HTTP/1.1`, goes on to the origin server in
//! origin form (`GET /path HTTP/1.1`), its `Host` set from the URL, the hop-by-hop header
//! fields (RFC 9110 section 7.6.1: `Connection`, `Keep-Alive`, `TE`, `Upgrade`, and those
//! `Connection` names) and every `Proxy-*` field left out, a `Via` line added, and
//! `Connection: close`: one request per connection. The body goes on byte for byte, as long
//! as its `Content-Length` says: the proxy passes on that many bytes and no more, so a
//! request with a chunked body (no length known up front) is refused (411, RFC 9112 section
//! 6.3 lets a server ask for a length), and conflicting lengths are a bad request.
//!
//! httparse has parsed the head; the URL is the `url` crate's to take apart.
use url::{Position, Url};

use super::{Host, parse_authority};

/// Why a plain request's target cannot be passed on (`http_connect` answers it with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A scheme other than `http`.
    #[error("scheme {0}: only http:// URLs (and CONNECT for the rest)")]
    Scheme(String),
    /// Not an absolute `http://` URL with a host, or one with a login in it.
    #[error("bad request target {0:?}")]
    Target(String),
    /// A body framed by `Transfer-Encoding` (chunked) rather than a length.
    #[error("a request body without Content-Length")]
    LengthRequired,
    /// `Content-Length` not a number, or more than one that disagree.
    #[error("bad Content-Length {0:?}")]
    Length(String),
}

/// Fields that end at the proxy, in lower case, besides `Proxy-*` and those `Connection`
/// names; `Host` is written afresh from the URL.
const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "te", "upgrade", "host"];

/// A request to pass on: where to, and its head as the origin server gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The origin server.
    pub host: Host,
    /// Its port (80 when the URL names none).
    pub port: u16,
    /// The rewritten request head, ending in its blank line.
    pub head: Vec<u8>,
    /// The bytes of body that follow the head (its `Content-Length`, 0 without one).
    pub body: u64,
}

/// Rewrites a parsed request with an absolute-form `http://` target for the origin server.
pub fn rewrite(req: &httparse::Request<'_, '_>) -> Result<Forward, TargetError> {
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let bad = || TargetError::Target(target.chars().take(64).collect());
    let url = Url::parse(target).map_err(|_| bad())?;
    if url.scheme() != "http" {
        return Err(TargetError::Scheme(url.scheme().chars().take(16).collect()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    let body = body_length(req)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (host, port) =
        parse_authority(&format!("{}:{port}", url.host_str().ok_or_else(bad)?)).ok_or_else(bad)?;
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let named = connection_options(req.headers);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&name.as_str())
            || name.starts_with("proxy-")
            || named.contains(&name)
        {
            continue;
        }
        head.extend_from_slice(h.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Via: 1.1 taojie\r\nConnection: close\r\n\r\n");
    Ok(Forward {
        host,
        port,
        head,
        body,
    })
}

/// The request body's length from `Content-Length` (0 when there is none); a
/// `Transfer-Encoding` asks for a length instead.
fn body_length(req: &httparse::Request<'_, '_>) -> Result<u64, TargetError> {
    let mut length = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(TargetError::LengthRequired);
        }
        if !h.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let text = String::from_utf8_lossy(h.value);
        for part in text.split(',') {
            let part = part.trim();
            let bad = || TargetError::Length(part.chars().take(32).collect());
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u64 = part.parse().map_err(|_| bad())?;
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
        }
    }
    Ok(length.unwrap_or(0))
}

/// The field names a message's `Connection` fields list (RFC 9110 §7.6.1), in lower case:
/// hop-by-hop fields of this one connection, never passed on.
pub fn connection_options(headers: &[httparse::Header<'_>]) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(head: &[u8]) -> Result<Forward, TargetError> {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(head).unwrap().is_complete());
        rewrite(&req)
    }

    #[test]
    fn absolute_form_becomes_origin_form_without_hop_by_hop_fields() {
        let f = forward(
            b"GET http://Example.COM:8080/a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\
User-Agent: curl/8\r\nProxy-Connection: Keep-Alive\r\nProxy-Authorization: Basic YTpi\r\n\
Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
Content-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!((f.host, f.port), (Host::Name("example.com".into()), 8080));
        assert_eq!(f.body, 3);
        assert_eq!(
            String::from_utf8(f.head).unwrap(),
            "GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\n\
Content-Length: 3\r\nVia: 1.1 taojie\r\nConnection: close\r\n\r\n"
        );
        let f = forward(b"POST http://[::1] HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((f.host, f.port), (Host::parse("::1"), 80));
        assert!(f.head.starts_with(b"POST / HTTP/1.1\r\nHost: [::1]\r\n"));
    }

    #[test]
    fn other_schemes_logins_and_origin_form_are_refused() {
        for head in [
            &b"GET https://x/ HTTP/1.1\r\n\r\n"[..],
            b"GET ftp://x/ HTTP/1.1\r\n\r\n",
            b"GET http://u:p@x/ HTTP/1.1\r\n\r\n",
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert!(forward(head).is_err());
        }
    }

    #[test]
    fn only_a_body_of_known_length_goes_on() {
        let length = |fields: &str| {
            let head = format!("POST http://x/ HTTP/1.1\r\n{fields}\r\n");
            forward(head.as_bytes()).map(|f| f.body)
        };
        assert_eq!(length(""), Ok(0));
        assert_eq!(length("Content-Length: 10\r\n"), Ok(10));
        assert_eq!(
            length("Content-Length: 7, 7\r\nContent-Length: 7\r\n"),
            Ok(7)
        );
        assert_eq!(
            length("Transfer-Encoding: chunked\r\n"),
            Err(TargetError::LengthRequired)
        );
        for bad in ["1, 2", "-1", "+5", "0x10", "", "99999999999999999999"] {
            assert!(
                matches!(
                    length(&format!("Content-Length: {bad}\r\n")),
                    Err(TargetError::Length(_))
                ),
                "{bad}"
            );
        }
    }
}
