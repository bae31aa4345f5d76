//! The tree's URLs (under `/`, or under a share link's prefix): what each method does to a
//! folder or a file, within what the service's mode and the request's scope allow.
//!
//! | request | does |
//! |---|---|
//! | `GET /DIR/` | the page (a browser), `?json` the listing, `?search=Q` names below, `?archive=zip` or `tar.gz` the folder |
//! | `GET /FILE` | the file, with `Range` (`?download`: as an attachment) |
//! | `POST /FILE?upload&size=N&mtime=MS` | where an upload continues (see [`upload`]) |
//! | `PATCH /FILE?offset=K&size=N&mtime=MS` | one chunk, with its `Content-Digest` |
//! | `PUT /FILE` | the whole file in one request (`?overwrite` to replace) |
//! | `POST /DIR?mkdir` | makes the folder |
//! | `POST /NAME?move=PATH` | moves or renames (`&overwrite` to replace) |
//! | `DELETE /NAME` | removes a file, or a folder with what it holds |
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::access::{Mode, Scope};
use super::body::io_reply;
use super::body::{Reply, json, plain};
use super::disk::stat;
use super::path;
use super::{Web, archive, download, edit, listing, page, share, upload};
use crate::files::names::RelName;
use crate::files::store::Kind;
use crate::web::query_param;

/// Answers a request for `rest` (the path after the scope's prefix) in `scope`.
pub async fn handle(req: Request<Incoming>, web: &Arc<Web>, scope: Scope, rest: &str) -> Reply {
    let target = match path::parse(rest) {
        Ok(t) => t,
        Err(e) => {
            crate::metrics::service(super::SERVICE).refused("bad name");
            return plain(StatusCode::BAD_REQUEST, format!("name refused: {e}\n"));
        }
    };
    let mode = Mode::of(web, &scope);
    let query = req.uri().query().map(str::to_string);
    let q = |k: &str| query_param(query.as_deref(), k).map(decode);
    let name = match &scope {
        Scope::Full => target.name.clone(),
        Scope::Share { top, .. } => path::join(top.as_ref(), target.name.as_ref()),
    };
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            if !mode.reads() {
                return match (q("json"), target.slash) {
                    // The page learns the mode, and shows its upload box.
                    (Some(_), _) => json(
                        StatusCode::OK,
                        &json!({"mode": mode.as_str(), "entries": null,
                        "base": scope.prefix(), "path": target.name.as_ref().map_or("", |n| n.as_str()),
                        "chunk": web.chunk, "share": false}),
                    ),
                    (None, true) if q("archive").is_none() && q("search").is_none() => {
                        page::shell(&req)
                    }
                    (None, _) => plain(StatusCode::FORBIDDEN, "this server is upload-only\n"),
                };
            }
            let stat = stat(web, name.clone()).await;
            let entry = match stat {
                Ok(e) => e,
                Err(e) => return io_reply(&e),
            };
            match entry.kind {
                Kind::Dir if !target.slash => {
                    let shown = target.name.as_ref().map_or("", |n| n.as_str());
                    let to = path::href(scope.prefix(), shown, true);
                    let to = match &query {
                        Some(q) => format!("{to}?{q}"),
                        None => to,
                    };
                    moved(&to)
                }
                Kind::Dir => {
                    if let Some(kind) = q("archive") {
                        return archive::reply(web, name, &kind).await;
                    }
                    if let Some(text) = q("search") {
                        return listing::search(web, &scope, name, target.name, text).await;
                    }
                    if q("json").is_some() {
                        return listing::reply(web, &scope, mode, name, target.name).await;
                    }
                    page::shell(&req)
                }
                Kind::File
                    if target.slash
                        && let Some(shown) = &target.name =>
                {
                    moved(&path::href(scope.prefix(), shown.as_str(), false))
                }
                Kind::File => download::reply(&req, web, name, q("download").is_some()).await,
                Kind::Other => plain(StatusCode::FORBIDDEN, "not a file or a folder\n"),
            }
        }
        _ if matches!(scope, Scope::Share { .. }) => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "a share link is read-only\n",
        ),
        Method::POST if q("upload").is_some() => {
            with_name(name, |n| upload::start(req, web, mode, n)).await
        }
        Method::PATCH => with_name(name, |n| upload::chunk(req, web, mode, n)).await,
        Method::PUT => {
            let replace = q("overwrite").is_some();
            with_name(name, |n| upload::whole(req, web, mode, n, replace)).await
        }
        Method::POST if q("mkdir").is_some() => {
            with_name(name, |n| edit::mkdir(web, mode, n)).await
        }
        Method::POST if q("move").is_some() => {
            let to = q("move").unwrap_or_default();
            let replace = q("overwrite").is_some();
            with_name(name, |n| edit::rename(web, mode, n, to, replace)).await
        }
        Method::DELETE => with_name(name, |n| edit::delete(web, mode, n)).await,
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "not a method this page knows\n",
            );
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PATCH, PUT, DELETE"),
            );
            r
        }
    }
}

/// Runs `f` on the request's name; the root itself cannot be uploaded to, moved or removed.
async fn with_name<F, Fut>(name: Option<RelName>, f: F) -> Reply
where
    F: FnOnce(RelName) -> Fut,
    Fut: Future<Output = Reply>,
{
    match name {
        Some(n) => f(n).await,
        None => plain(StatusCode::BAD_REQUEST, "not on the root itself\n"),
    }
}

/// A query value, form-decoded (`+` is a space).
fn decode(v: &str) -> String {
    form_urlencoded::parse(format!("v={v}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `301 Moved Permanently` to `to`.
fn moved(to: &str) -> Reply {
    let mut r = plain(StatusCode::MOVED_PERMANENTLY, "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `POST /.taojie/api/share?path=P&expires=SECS`: a share link to `P`, for the page's share
/// dialog (the key signs it; the host is the one the page was loaded from).
pub fn mint_share(req: &Request<Incoming>, web: &Web) -> Reply {
    let Some(key) = &web.token else {
        return plain(
            StatusCode::NOT_FOUND,
            "this server has no key, so no share links: anyone who can reach the page can read it\n",
        );
    };
    if web.state.upload_only {
        return plain(StatusCode::FORBIDDEN, "this server is upload-only\n");
    }
    let q = req.uri().query();
    let name = query_param(q, "path").map(decode).unwrap_or_default();
    let name = match crate::files::names::validate_dir(&name) {
        Ok(n) => n,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("name refused: {e}\n")),
    };
    let secs = query_param(q, "expires")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(86_400)
        .clamp(60, 10 * 365 * 86_400);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let expires = share::now() + secs;
    let url = share::link(host, key, name.as_ref(), expires);
    json(StatusCode::OK, &json!({"url": url, "expires": expires}))
}
