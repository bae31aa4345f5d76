//! How a page's server answers: every response carries the same security policy (scripts
//! and styles from the server only, never inline; nothing loaded from elsewhere; not framed;
//! no referrer), and refusals are one line of plain text.
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// The policy on every response of a page's server.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cache-control", "no-cache"),
];

/// A response of `status` whose body is `text` (one line, for a person), with the policy.
pub fn plain<B: From<Bytes>>(status: StatusCode, text: impl Into<String>) -> Response<B> {
    let text: String = text.into();
    let mut r = Response::new(B::from(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secured(r)
}

/// `r` with the policy added.
pub fn secured<B>(mut r: Response<B>) -> Response<B> {
    add_security_headers(r.headers_mut());
    r
}

/// Adds the policy to `h` (replacing any value already there).
pub fn add_security_headers(h: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
}

/// A whole body, for `plain` and small answers.
pub type Whole = Full<Bytes>;
