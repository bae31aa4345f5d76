//! One HTTP connection of the files page: requests until it closes, each routed by its path
//! (the page's own files, share links, the page's small API, WebDAV, and the tree). When the
//! server stops, a connection between requests closes at once and one in a request finishes
//! it (within the server's grace period).
use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::debug;

use super::access::{self, Scope};
use super::body::{Reply, plain};
use super::zerocopy::{Outbox, Wire};
use super::{Web, dav, page, routes, share};
use crate::server::Conn;

/// How long a client may take to send a request's head (and a kept-alive connection may sit
/// between requests).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest read of a connection (hyper's buffer, which also bounds a request's head):
/// with 64 KiB, an 8 MiB upload chunk came in 128 pieces, each a wake-up of the thread that
/// writes it (BENCHMARKS.md, "Files page").
const READ_MAX: usize = 512 * 1024;

/// Serves one connection.
pub async fn connection(conn: Conn, web: Arc<Web>) -> io::Result<()> {
    let outbox = Outbox::default();
    let service = {
        let web = web.clone();
        let outbox = outbox.clone();
        service_fn(move |mut req: Request<Incoming>| {
            let web = web.clone();
            req.extensions_mut().insert(outbox.clone());
            async move { Ok::<_, Infallible>(route(req, web).await) }
        })
    };
    // Queued writes (`writev`), never copied into hyper's own buffer: a download's chunks
    // are stand-ins that the wire turns into sendfile(2) (see `zerocopy`). Reads grow up to
    // `READ_MAX` while a body fills them: an upload's bytes come in few large pieces.
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(READ_MAX)
        .writev(true)
        .serve_connection(TokioIo::new(Wire::new(conn, outbox)), service);
    tokio::pin!(served);
    let res = tokio::select! {
        res = served.as_mut() => res,
        () = web.stopping.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = res {
        debug!(error = %e, "http connection ended");
    }
    Ok(())
}

/// Answers one request.
async fn route(req: Request<Incoming>, web: Arc<Web>) -> Reply {
    if let Some(refusal) = access::gate(&req, &web) {
        return refusal;
    }
    let path = req.uri().path().to_string();
    if let Some(asset) = path.strip_prefix("/.taojie/") {
        return taojie_path(req, &web, asset).await;
    }
    if path == "/dav" || path.starts_with("/dav/") {
        if !access::admitted(&req, &web) {
            return access::unauthorized(true);
        }
        return dav::handle(req, &web).await;
    }
    if req.method() == Method::GET
        && let Some(reply) = access::login(&req, &web)
    {
        return reply;
    }
    if !access::admitted(&req, &web) {
        return access::unauthorized(false);
    }
    routes::handle(req, &web, Scope::Full, &path[1..]).await
}

/// Paths under `/.taojie/`: the page's files, share links, and the page's API.
async fn taojie_path(req: Request<Incoming>, web: &Arc<Web>, rest: &str) -> Reply {
    if let Some(link) = rest.strip_prefix("share/") {
        return shared(req, web, link).await;
    }
    if let Some(reply) = page::asset(&req, rest) {
        return reply;
    }
    // A QR code is a picture of the text it is asked for, nothing of the server's: a page
    // opened through a share link (without the token) shows one too.
    if rest == "qr.svg" {
        return super::qr::reply(&req);
    }
    if !access::admitted(&req, web) {
        return access::unauthorized(false);
    }
    match rest {
        "api/share" if req.method() == Method::POST => routes::mint_share(&req, web),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A share link: the token names what it reaches; what follows it is a path inside.
async fn shared(req: Request<Incoming>, web: &Arc<Web>, link: &str) -> Reply {
    let (token, rest) = link.split_once('/').unwrap_or((link, ""));
    let Some(key) = &web.token else {
        return plain(
            StatusCode::NOT_FOUND,
            "this server has no key, so no share links\n",
        );
    };
    let top = match share::check(key, token, share::now()) {
        Ok(top) => top,
        Err(e @ share::Refused::Expired) => return plain(StatusCode::GONE, format!("{e}\n")),
        Err(e) => {
            crate::metrics::service(super::SERVICE).refused("bad share link");
            return plain(StatusCode::FORBIDDEN, format!("{e}\n"));
        }
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "a share link is read-only\n",
        );
    }
    let prefix = format!("{}{token}/", share::PREFIX);
    let rest = rest.to_string();
    routes::handle(req, web, Scope::Share { top, prefix }, &rest).await
}
