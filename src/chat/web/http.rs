//! One HTTP connection to the web chat: the page's files (embedded in the binary), and the
//! WebSocket upgrade at `/ws`. An upgraded connection goes on in the same task as a chat
//! member, so the server framework counts it, and cuts it at the shutdown deadline, like any
//! other connection.
use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::debug;

use super::{Web, relay};
use crate::server::Conn;
use crate::web::secured;
use crate::web::{host_is_loopback, origin_ok, query_param};

/// How long a client may take to send a request's head (and a kept-alive connection may sit
/// between requests).
const HEAD_TIMEOUT: Duration = Duration::from_secs(20);

/// The page, as files in `page/`.
const FILES: [(&str, &str, &str); 5] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    ),
    (
        "/lines.js",
        "text/javascript; charset=utf-8",
        include_str!("page/lines.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("page/style.css"),
    ),
    ("/icon.svg", "image/svg+xml", include_str!("page/icon.svg")),
];

type Reply = Response<Full<Bytes>>;

/// Serves one connection: requests until it closes, or the WebSocket it becomes.
pub(super) async fn connection(conn: Conn, web: Arc<Web>) -> io::Result<()> {
    let upgrade: Arc<Mutex<Option<OnUpgrade>>> = Arc::default();
    let service = {
        let (web, slot) = (web.clone(), upgrade.clone());
        service_fn(move |mut req: Request<hyper::body::Incoming>| {
            let reply = route(&mut req, &web, &slot);
            async move { Ok::<_, Infallible>(reply) }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(8192)
        .serve_connection(TokioIo::new(conn), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        debug!(error = %e, "http connection ended");
        return Ok(());
    }
    let pending = upgrade.lock().expect("not poisoned").take();
    if let Some(on) = pending {
        let upgraded = on.await.map_err(io::Error::other)?;
        relay::member(TokioIo::new(upgraded), &web).await?;
    }
    Ok(())
}

fn route(
    req: &mut Request<hyper::body::Incoming>,
    web: &Web,
    slot: &Mutex<Option<OnUpgrade>>,
) -> Reply {
    let path = req.uri().path();
    if path == "/ws" {
        return upgrade(req, web, slot);
    }
    let Some((_, kind, body)) = FILES.iter().find(|(p, _, _)| *p == path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    secured(r)
}

/// Checks a WebSocket request (RFC 6455 §4.2.1) and who sends it; answers 101 and leaves the
/// connection in `slot`, or refuses with a status the page and tests can tell apart.
fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    web: &Web,
    slot: &Mutex<Option<OnUpgrade>>,
) -> Reply {
    let h = req.headers();
    let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    let has_token = |name: header::HeaderName, want: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(want))
    };
    if req.method() != Method::GET
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade is expected here\n",
        );
    }
    if text(header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut r = plain(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key\n");
    };
    if !key_ok(key.as_bytes()) {
        debug!("websocket refused: a Sec-WebSocket-Key that is not 16 bytes in base64");
        crate::metrics::service("chat-web").refused("bad websocket key");
        return plain(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be 16 bytes in base64\n",
        );
    }
    let Some(host) = text(header::HOST) else {
        return plain(StatusCode::BAD_REQUEST, "no Host\n");
    };
    if web.loopback && !host_is_loopback(host) {
        debug!(host, "websocket refused: not a loopback host name");
        crate::metrics::service("chat-web").refused("not a loopback host name");
        return plain(
            StatusCode::FORBIDDEN,
            "this server answers to loopback names only\n",
        );
    }
    if !origin_ok(text(header::ORIGIN), host) {
        debug!(origin = ?text(header::ORIGIN), host, "websocket refused: foreign origin");
        crate::metrics::service("chat-web").refused("foreign origin");
        return plain(
            StatusCode::FORBIDDEN,
            "a page from another origin may not join\n",
        );
    }
    if let Some(token) = &web.token {
        let given = query_param(req.uri().query(), "token").unwrap_or("");
        if !token.check(given) {
            debug!("websocket refused: no or wrong token");
            let meter = crate::metrics::service("chat-web");
            meter.auth_failures.inc();
            meter.refused("no or wrong token");
            return plain(
                StatusCode::UNAUTHORIZED,
                "this chat needs its token: open the login URL the broker printed\n",
            );
        }
    }
    let accept = derive_accept_key(key.as_bytes());
    *slot.lock().expect("not poisoned") = Some(hyper::upgrade::on(req));
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = r.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    secured(r)
}

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 §4.2.1 asks for: a nonce of 16 bytes in
/// base64 (24 characters, padding included).
fn key_ok(key: &[u8]) -> bool {
    use base64::Engine;
    let key = key.trim_ascii();
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|nonce| nonce.len() == 16)
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    crate::web::plain(status, text)
}

#[cfg(test)]
mod tests {
    use super::key_ok;

    #[test]
    fn a_websocket_key_is_16_bytes_in_base64() {
        // RFC 6455 §1.3's example key.
        assert!(key_ok(b"dGhlIHNhbXBsZSBub25jZQ=="));
        for bad in [
            &b""[..],
            b"x",
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZSE=",
            b"dGhlIHNhbXBsZSBub25jZSEh",
            b"!!!!!!!!!!!!!!!!!!!!!!==",
            b"dGhlIHNhbXBsZSBub25jZQ==dGhl",
        ] {
            assert!(!key_ok(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
