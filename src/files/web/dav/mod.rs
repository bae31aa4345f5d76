//! WebDAV at `/dav/` (RFC 4918, class 1 and 2): what `rclone`'s webdav remote, `cadaver`,
//! `davfs2` and desktop file managers use to list, copy, sync and mount the root. Written
//! here on hyper rather than taken from a crate, so that it is the same code as the page's:
//! `GET` is the page's download (with `Range`), `PUT` goes through the upload writer (a
//! partial file beside the target, the file under its name only when whole), and every name
//! goes through the store beneath the root, in the service's mode, with the page's token as
//! the password.
//!
//! [`props`] answers `PROPFIND` and `PROPPATCH`, [`lock`] holds `LOCK`s, [`copy`] does
//! `COPY` and `MOVE`, [`xml`] reads and writes the bodies.
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tracing::info;

use super::Web;
use super::access::Mode;
use super::body::io_reply;
use super::body::{Reply, plain, whole};
use super::disk::{blocking, stat};
use super::path::{self, href};
use super::upload::{self, Put};
use crate::files::names::RelName;
use crate::files::store::Kind;

pub mod copy;
pub mod lock;
pub mod props;
pub mod xml;

/// The URL prefix of WebDAV.
pub const PREFIX: &str = "/dav/";
const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK";

/// Answers a request under `/dav`.
pub async fn handle(req: Request<Incoming>, web: &Arc<Web>) -> Reply {
    let rest = req
        .uri()
        .path()
        .strip_prefix("/dav")
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let target = match path::parse(&rest) {
        Ok(t) => t,
        Err(e) => {
            crate::metrics::service(super::SERVICE).refused("bad name");
            return plain(StatusCode::BAD_REQUEST, format!("name refused: {e}\n"));
        }
    };
    let name = target.name.clone();
    let mode = Mode::of(web, &super::access::Scope::Full);
    let rel = name
        .as_ref()
        .map_or(String::new(), |n| n.as_str().to_string());
    let tokens = lock::tokens(req.headers());
    let method = req.method().as_str().to_string();
    let writes = !matches!(method.as_str(), "OPTIONS" | "GET" | "HEAD" | "PROPFIND");
    if writes && !mode.writes() {
        return plain(StatusCode::FORBIDDEN, "this server is read-only\n");
    }
    if !writes && method != "OPTIONS" && !mode.reads() {
        return plain(StatusCode::FORBIDDEN, "this server is upload-only\n");
    }
    let edits = matches!(method.as_str(), "DELETE" | "MOVE" | "PROPPATCH");
    if edits && !mode.edits() {
        return plain(
            StatusCode::FORBIDDEN,
            "this server is upload-only: nothing is moved or removed\n",
        );
    }
    // A change to a locked resource needs the lock's token.
    let tree = matches!(method.as_str(), "DELETE" | "MOVE");
    if matches!(
        method.as_str(),
        "PUT" | "DELETE" | "MKCOL" | "MOVE" | "PROPPATCH"
    ) && !web.locks.may_change(&rel, tree, &tokens)
    {
        return plain(
            StatusCode::LOCKED,
            "locked: the request does not name the lock's token\n",
        );
    }
    match method.as_str() {
        "OPTIONS" => {
            let mut r = Response::new(whole(""));
            let h = r.headers_mut();
            h.insert("dav", HeaderValue::from_static("1, 2"));
            h.insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            h.insert("ms-author-via", HeaderValue::from_static("DAV"));
            crate::web::secured(r)
        }
        "GET" | "HEAD" => match stat(web, name.clone()).await {
            Ok(e) if e.kind == Kind::Dir => {
                // A browser that opened a WebDAV folder is sent to its page.
                super::access::redirect_to(&href("/", &rel, true))
            }
            Ok(_) => super::download::reply(&req, web, name, false).await,
            Err(e) => io_reply(&e),
        },
        "PROPFIND" => {
            let depth = match req.headers().get("depth").and_then(|v| v.to_str().ok()) {
                Some("0") => 0,
                Some("1") => 1,
                // Depth: infinity over a large tree is refused, as RFC 4918 §9.1 allows.
                Some(_) | None => {
                    return multistatus_error(StatusCode::FORBIDDEN, "<D:propfind-finite-depth/>");
                }
            };
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            props::propfind(web, name, depth, &body).await
        }
        "PROPPATCH" => {
            let dir = target.slash;
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Err(e) = stat(web, name.clone()).await {
                return io_reply(&e);
            }
            props::proppatch(name.as_ref(), dir, &body)
        }
        "MKCOL" => {
            if has_body(req.headers()) {
                return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body\n");
            }
            let Some(n) = name else {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "the root exists\n");
            };
            let root = web.state.root.clone();
            let made = n.clone();
            match blocking(move || root.make_dir(&made)).await {
                Ok(()) => {
                    info!(name = %n, "folder made (WebDAV)");
                    created(StatusCode::CREATED)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    plain(StatusCode::METHOD_NOT_ALLOWED, "it exists already\n")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    plain(StatusCode::CONFLICT, "its parent folder does not exist\n")
                }
                Err(e) => io_reply(&e),
            }
        }
        "PUT" => put(req, web, name).await,
        "DELETE" => {
            let Some(n) = name else {
                return plain(StatusCode::FORBIDDEN, "the root is not removed\n");
            };
            let root = web.state.root.clone();
            let gone = n.clone();
            match blocking(move || root.remove(&gone)).await {
                Ok(()) => {
                    web.locks.forget_under(n.as_str());
                    info!(name = %n, "removed (WebDAV)");
                    created(StatusCode::NO_CONTENT)
                }
                Err(e) => io_reply(&e),
            }
        }
        "MOVE" | "COPY" => copy::request(req, web, mode, name, &tokens).await,
        "LOCK" => lock_request(req, web, name, &tokens).await,
        "UNLOCK" => {
            let ok = tokens.first().is_some_and(|t| web.locks.unlock(&rel, t));
            if ok {
                created(StatusCode::NO_CONTENT)
            } else {
                plain(StatusCode::CONFLICT, "no such lock on this resource\n")
            }
        }
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "not a WebDAV method this server knows\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            r
        }
    }
}

/// `PUT`: the whole body into the upload writer. A file there is replaced (unless
/// `If-None-Match: *`); the parent folder must exist. `X-OC-Mtime` (seconds) sets the time.
async fn put(req: Request<Incoming>, web: &Arc<Web>, name: Option<RelName>) -> Reply {
    let Some(n) = name else {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "not on a folder\n");
    };
    let parent = n.as_str().rsplit_once('/').map(|(p, _)| p.to_string());
    let parent = parent.and_then(|p| crate::files::names::validate(&p).ok());
    match stat(web, parent).await {
        Ok(e) if e.kind == Kind::Dir => {}
        _ => return plain(StatusCode::CONFLICT, "its parent folder does not exist\n"),
    }
    if let Ok(e) = stat(web, Some(n.clone())).await
        && e.kind == Kind::Dir
    {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "a folder is there\n");
    }
    let h = req.headers();
    let replace = h
        .get(header::IF_NONE_MATCH)
        .is_none_or(|v| v.as_bytes() != b"*");
    let oc = h
        .get("x-oc-mtime")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let mtime_ns = match oc {
        Some(s) => s.saturating_mul(1_000_000_000),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    };
    match upload::receive_whole(req, web, &n, replace, mtime_ns).await {
        Put::Stored { replaced, .. } => {
            let mut r = created(if replaced {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::CREATED
            });
            if oc.is_some() {
                r.headers_mut()
                    .insert("x-oc-mtime", HeaderValue::from_static("accepted"));
            }
            r
        }
        Put::Refused(r) if r.status() == StatusCode::CONFLICT => plain(
            StatusCode::PRECONDITION_FAILED,
            "it exists, and If-None-Match: * was asked\n",
        ),
        Put::Refused(r) => r,
    }
}

/// `LOCK`: a new lock (with a `lockinfo` body), or a refresh (no body, the token in `If`). A
/// lock on a name with nothing there makes an empty file, as RFC 4918 §9.10.4 says.
async fn lock_request(
    req: Request<Incoming>,
    web: &Arc<Web>,
    name: Option<RelName>,
    tokens: &[String],
) -> Reply {
    let rel = name
        .as_ref()
        .map_or(String::new(), |n| n.as_str().to_string());
    let timeout = lock::timeout(req.headers());
    let infinity = req
        .headers()
        .get("depth")
        .is_none_or(|v| v.as_bytes() != b"0");
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let info = match xml::parse(&body) {
        Ok(i) => i,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let link = href(PREFIX, &rel, false);
    let (token, lock, status) = match info {
        None => match web.locks.refresh(&rel, tokens, timeout) {
            Some((t, l)) => (t, l, StatusCode::OK),
            None => {
                return plain(
                    StatusCode::PRECONDITION_FAILED,
                    "no lock of this token to refresh\n",
                );
            }
        },
        Some(info) if !info.is("lockinfo") => {
            return plain(StatusCode::BAD_REQUEST, "a lockinfo element is expected\n");
        }
        Some(info) => {
            let exclusive = info
                .child("lockscope")
                .is_none_or(|s| s.child("shared").is_none());
            let owner = info.child("owner").map(|o| {
                o.children.iter().map(xml::Elem::to_xml).collect::<String>() + &xml::escape(&o.text)
            });
            let mut status = StatusCode::OK;
            if let Some(n) = &name
                && stat(web, Some(n.clone())).await.is_err()
            {
                if !web.state.read_only && make_empty(web, n).await.is_err() {
                    return plain(
                        StatusCode::CONFLICT,
                        "nothing there, and no empty file could be made\n",
                    );
                }
                status = StatusCode::CREATED;
            }
            match web.locks.lock(&rel, infinity, exclusive, owner, timeout) {
                Some((t, l)) => (t, l, status),
                None => return plain(StatusCode::LOCKED, "locked already\n"),
            }
        }
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>{}</D:lockdiscovery></D:prop>",
        lock.xml(&token, &link)
    );
    let mut r = Response::new(whole(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("<{token}>")) {
        h.insert("lock-token", v);
    }
    crate::web::secured(r)
}

/// An empty file at `name`, through the upload writer.
async fn make_empty(web: &Arc<Web>, name: &RelName) -> std::io::Result<()> {
    use crate::files::protocol::FileHeader;
    use crate::files::store::{partial::Partial, writer::Writer};
    let root = web.state.root.clone();
    let name = name.clone();
    blocking(move || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let header = FileHeader {
            name: name.as_str().to_string(),
            size: 0,
            mode: 0o644,
            mtime_ns: now,
        };
        let mut w = Writer::start(Partial::open_with(&root, &name, &header, false, true)?)?;
        let res = w.vouch();
        w.end(res).map(|_| ())
    })
    .await
}

/// Reads a small request body (XML), refusing one larger than [`xml::MAX_BODY`].
async fn read_body(req: Request<Incoming>) -> Result<bytes::Bytes, Reply> {
    match Limited::new(req.into_body(), xml::MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the XML body is too large, or was cut off\n",
        )),
    }
}

fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// An answer with no body.
pub(super) fn created(status: StatusCode) -> Reply {
    let mut r = Response::new(whole(""));
    *r.status_mut() = status;
    crate::web::secured(r)
}

/// A `207 Multi-Status` of `responses`.
pub fn multistatus(responses: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">{responses}</D:multistatus>\n"
    );
    let mut r = Response::new(whole(body));
    *r.status_mut() = StatusCode::MULTI_STATUS;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    crate::web::secured(r)
}

/// An error with a precondition element (RFC 4918 §16).
fn multistatus_error(status: StatusCode, condition: &str) -> Reply {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\">{condition}</D:error>\n"
    );
    let mut r = Response::new(whole(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    crate::web::secured(r)
}
