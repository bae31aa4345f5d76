//! Who sent a request, and what it may reach. Every request: a loopback server answers
//! loopback host names only (no DNS rebinding), and a request that changes something must
//! come from the page's own origin (no cross-site forms). Then, on a keyed server, the login
//! token: in the page's cookie (set by the login URL), or for programs as
//! `Authorization: Bearer TOKEN`, or as a Basic password (any user name), which WebDAV
//! clients send. A share link reaches only what it names, read-only.
use base64::Engine;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::Web;
use super::body::{Reply, plain};
use crate::files::names::RelName;
use crate::web::{host_is_loopback, origin_ok, query_param};

/// What a request may reach.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The whole root, within the service's mode: the token was shown, or the server has
    /// no key (loopback only).
    Full,
    /// A share link's: `top` and what is beneath it, read-only; URLs start with `prefix`.
    Share {
        /// What was shared (the root for `None`).
        top: Option<RelName>,
        /// `/.taojie/share/TOKEN/`.
        prefix: String,
    },
}

impl Scope {
    /// The URL prefix the scope's paths follow.
    pub fn prefix(&self) -> &str {
        match self {
            Scope::Full => "/",
            Scope::Share { prefix, .. } => prefix,
        }
    }

    /// The scope's top within the root.
    pub fn top(&self) -> Option<&RelName> {
        match self {
            Scope::Full => None,
            Scope::Share { top, .. } => top.as_ref(),
        }
    }
}

/// What the service's mode lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything.
    ReadWrite,
    /// Read only (`--read-only`, or a share link).
    ReadOnly,
    /// Upload only (`--upload-only`): no listing, no download, nothing removed or moved.
    UploadOnly,
}

impl Mode {
    /// The mode of a request in `scope` on `web`.
    pub fn of(web: &Web, scope: &Scope) -> Mode {
        match scope {
            Scope::Share { .. } => Mode::ReadOnly,
            Scope::Full if web.state.read_only => Mode::ReadOnly,
            Scope::Full if web.state.upload_only => Mode::UploadOnly,
            Scope::Full => Mode::ReadWrite,
        }
    }

    /// How the page names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "rw",
            Mode::ReadOnly => "ro",
            Mode::UploadOnly => "upload",
        }
    }

    /// Whether listings and downloads are allowed.
    pub fn reads(self) -> bool {
        self != Mode::UploadOnly
    }

    /// Whether uploads and new folders are allowed.
    pub fn writes(self) -> bool {
        self != Mode::ReadOnly
    }

    /// Whether names may be moved or removed.
    pub fn edits(self) -> bool {
        self == Mode::ReadWrite
    }
}

/// Whether a method only reads.
pub fn is_safe(m: &Method) -> bool {
    matches!(m.as_str(), "GET" | "HEAD" | "OPTIONS" | "PROPFIND")
}

/// The checks every request passes before anything else: the host name, and for a request
/// that changes something the origin (the `Origin` header, or a browser's `Sec-Fetch-Site`).
/// Returns the refusal, if any.
pub fn gate<B>(req: &Request<B>, web: &Web) -> Option<Reply> {
    let h = req.headers();
    let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).unwrap_or("");
    if web.loopback && !host_is_loopback(host) {
        refused("not a loopback host name");
        return Some(plain(
            StatusCode::FORBIDDEN,
            "this server answers to loopback names only\n",
        ));
    }
    if !is_safe(req.method()) {
        let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if !origin_ok(text(header::ORIGIN), host) || site == Some("cross-site") {
            refused("foreign origin");
            return Some(plain(
                StatusCode::FORBIDDEN,
                "a page from another origin may not change anything here\n",
            ));
        }
    }
    None
}

/// Whether the request shows the login token (or the server needs none).
pub fn admitted<B>(req: &Request<B>, web: &Web) -> bool {
    let Some(token) = &web.token else {
        return true;
    };
    let h = req.headers();
    if let Some(v) = cookie(h, &cookie_name(web)) {
        return token.check(v);
    }
    match h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(a) => credential(a).is_some_and(|t| token.check(&t)),
        None => false,
    }
}

/// The token in an `Authorization` header: `Bearer TOKEN`, or `Basic` with the token as
/// the password.
fn credential(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        return text.split_once(':').map(|(_, pass)| pass.to_string());
    }
    None
}

/// The refusal of a request without the token. WebDAV clients are asked for it as a
/// password; a browser is told to open the login URL.
pub fn unauthorized(dav: bool) -> Reply {
    crate::metrics::service(super::SERVICE).auth_failures.inc();
    refused("no or wrong token");
    let mut r = plain(
        StatusCode::UNAUTHORIZED,
        "this server needs its token: open the login URL it printed (WebDAV clients: the \
         token is the password, with any user name)\n",
    );
    if dav {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"taojie files\", charset=\"UTF-8\""),
        );
    }
    r
}

/// The login URL's answer: with the right `?token=`, a cookie holding it and a redirect to
/// the same path without it (so the token leaves the address bar and the history); `None`
/// when the request has no `token` parameter.
pub fn login<B>(req: &Request<B>, web: &Web) -> Option<Reply> {
    let given = query_param(req.uri().query(), "token")?;
    let Some(token) = &web.token else {
        return Some(redirect_to(req.uri().path()));
    };
    if !token.check(given) {
        return Some(unauthorized(false));
    }
    let mut r = redirect_to(req.uri().path());
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        cookie_name(web),
        token.hex()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Some(r)
}

/// A `303 See Other` to `path` on this server.
pub fn redirect_to(path: &str) -> Reply {
    let mut r = plain(StatusCode::SEE_OTHER, "");
    if let Ok(v) = HeaderValue::from_str(path) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The login cookie's name: one per port, as cookies are shared by every port of a host.
fn cookie_name(web: &Web) -> String {
    format!("taojie-files-{}", web.port)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn refused(why: &'static str) {
    tracing::debug!(why, "request refused");
    crate::metrics::service(super::SERVICE).refused(why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        assert_eq!(credential("Bearer abc").as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("any:abc");
        assert_eq!(
            credential(&format!("Basic {basic}")).as_deref(),
            Some("abc")
        );
        assert_eq!(credential("Digest x"), None);
        assert_eq!(credential("Basic !!!"), None);
    }
}
