//! HTTP/1.1 `CONNECT` (RFC 9110 section 9.3.6): the request head a client sends to open a
//! tunnel, with `Proxy-Authorization: Basic`, and the proxy's status line back; any other
//! method asks for a plain `http://` URL, passed on by [`super::http_forward`]. Heads are
//! parsed with httparse once complete, and refused past [`MAX_HEAD`] bytes.
use base64::Engine;

use super::http_forward::TargetError;
use super::socks5::Credentials;
use super::{Host, Parsed, parse_authority};

/// The most bytes a request or response head may take.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header lines a head may have.
const MAX_HEADERS: usize = 64;

/// Why a request head cannot be served; each maps to a status ([`HeadError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Longer than [`MAX_HEAD`] or more than 64 header lines.
    #[error("request head too large")]
    TooLarge,
    /// Not HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A URL whose scheme is not `http` (the proxy passes on plain HTTP only; https goes
    /// through a CONNECT tunnel).
    #[error("scheme {0}: only http:// URLs (and CONNECT for the rest)")]
    Scheme(String),
    /// The target is not `HOST:PORT` (CONNECT) or an `http://` URL (any other method).
    #[error("bad request target {0:?}")]
    Target(String),
    /// A plain request whose body has no length (chunked).
    #[error("a request body without Content-Length")]
    LengthRequired,
}

impl HeadError {
    /// The status line's code and reason for this error.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HeadError::TooLarge => (431, "Request Header Fields Too Large"),
            HeadError::Malformed(_) | HeadError::Target(_) | HeadError::Scheme(_) => {
                (400, "Bad Request")
            }
            HeadError::LengthRequired => (411, "Length Required"),
        }
    }
}

/// A parsed proxy request: a CONNECT, or a plain request to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// Where to.
    pub host: Host,
    /// The destination port.
    pub port: u16,
    /// `Proxy-Authorization: Basic` if present: `Some(None)` when present but not a
    /// well-formed Basic credential.
    pub credentials: Option<Option<Credentials>>,
    /// For a plain request (not CONNECT): its head rewritten for the origin server.
    pub forward: Option<Vec<u8>>,
    /// For a plain request: the bytes of body after its head (0 for CONNECT).
    pub body: u64,
}

/// Parses a proxy request head; the bytes after it (a client that did not wait for the
/// answer, or a request's body) are the tunnel's.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<ProxyRequest>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let (host, port, forward, body) = if req.method.unwrap_or_default() == "CONNECT" {
        let target = req.path.unwrap_or_default();
        let (host, port) = parse_authority(target)
            .ok_or_else(|| HeadError::Target(target.chars().take(64).collect()))?;
        (host, port, None, 0)
    } else {
        let f = super::http_forward::rewrite(&req).map_err(|e| match e {
            TargetError::Scheme(s) => HeadError::Scheme(s),
            TargetError::Target(t) => HeadError::Target(t),
            TargetError::LengthRequired => HeadError::LengthRequired,
            TargetError::Length(l) => HeadError::Malformed(format!("Content-Length {l:?}")),
        })?;
        (f.host, f.port, Some(f.head), f.body)
    };
    let credentials = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|h| basic(h.value));
    Ok(Parsed::Done(
        ProxyRequest {
            host,
            port,
            credentials,
            forward,
            body,
        },
        used,
    ))
}

/// `Basic BASE64(user:password)`.
fn basic(value: &[u8]) -> Option<Credentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(Credentials {
        user: decoded[..colon].to_vec(),
        password: decoded[colon + 1..].to_vec(),
    })
}

/// A proxy's answer head: `HTTP/1.1 CODE REASON`, the extra header lines, and a
/// zero-length body for an error (so a client knows it has the whole answer).
pub fn response(code: u16, reason: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if code != 200 {
        out.push_str("Content-Length: 0\r\nConnection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A client's CONNECT request head for `host:port`, with Basic credentials if given.
pub fn encode_connect(host: &Host, port: u16, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let target = format!("{host}:{port}");
    let mut out = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        out.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Parses a proxy's answer head: its status code and reason.
pub fn parse_response(buf: &[u8]) -> Result<Parsed<(u16, String)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let code = res.code.unwrap_or_default();
            let reason: String = res.reason.unwrap_or_default().chars().take(80).collect();
            Ok(Parsed::Done((code, reason), n))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(Parsed::Incomplete),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn curl_connect_with_and_without_credentials() {
        let head = b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
User-Agent: curl/8\r\nProxy-Connection: Keep-Alive\r\n\r\nGET /";
        let Ok(Parsed::Done(r, n)) = parse_request(head) else {
            panic!()
        };
        assert_eq!(
            (r.port, r.credentials, &head[n..]),
            (8080, None, &b"GET /"[..])
        );
        let head = encode_connect(&Host::parse("::1"), 443, Some(("ann", "p:w")));
        let Ok(Parsed::Done(r, _)) = parse_request(&head) else {
            panic!()
        };
        assert_eq!(r.host, Host::parse("::1"));
        let c = r.credentials.unwrap().unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"ann"[..], &b"p:w"[..])
        );
        let bad = b"CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: Bearer x\r\n\r\n";
        let Ok(Parsed::Done(r, _)) = parse_request(bad) else {
            panic!()
        };
        assert_eq!(r.credentials, Some(None));
    }

    #[test]
    fn plain_requests_bad_targets_and_huge_heads() {
        let Ok(Parsed::Done(r, _)) = parse_request(b"GET http://x/ HTTP/1.1\r\n\r\n") else {
            panic!()
        };
        assert_eq!((r.port, r.forward.is_some()), (80, true));
        let e = parse_request(b"GET https://x/ HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(e.status().0, 400);
        let e = parse_request(b"CONNECT ::1:80 HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(e.status().0, 400);
        let mut big = b"CONNECT a:1 HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD, b'a');
        assert_eq!(parse_request(&big), Err(HeadError::TooLarge));
        assert_eq!(parse_request(&big[..100]), Ok(Parsed::Incomplete));
    }

    #[test]
    fn responses() {
        let r = response(
            407,
            "Proxy Authentication Required",
            &["Proxy-Authenticate: Basic realm=\"taojie\""],
        );
        assert_eq!(
            parse_response(&r),
            Ok(Parsed::Done(
                (407, "Proxy Authentication Required".into()),
                r.len()
            ))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_nor_overrun(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(Parsed::Done(_, n)) = parse_request(&bytes) { prop_assert!(n <= bytes.len()); }
            if let Ok(Parsed::Done(_, n)) = parse_response(&bytes) { prop_assert!(n <= bytes.len()); }
        }

        #[test]
        fn connect_heads_round_trip(port: u16, name in "[a-z][a-z0-9.-]{0,60}",
                                    user in "[a-zA-Z0-9]{1,20}", pw in "[ -~]{0,30}") {
            let host = Host::Name(name);
            let head = encode_connect(&host, port, Some((&user, &pw)));
            for cut in 0..head.len() {
                prop_assert_eq!(parse_request(&head[..cut]), Ok(Parsed::Incomplete));
            }
            let Ok(Parsed::Done(r, n)) = parse_request(&head) else { panic!() };
            prop_assert_eq!((r.host, r.port, n), (host, port, head.len()));
            let c = r.credentials.unwrap().unwrap();
            prop_assert_eq!((c.user, c.password), (user.into_bytes(), pw.into_bytes()));
        }
    }
}
