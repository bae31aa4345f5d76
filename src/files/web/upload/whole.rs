//! A whole file in one request (`PUT`, from curl `-T` or WebDAV), through a fresh partial
//! file: kept only when it arrives whole (and matches its `Content-Digest`, if given).
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::info;

use super::sessions::{Stamp, open, open_refused};
use super::{content_length, feed, pump, sha256_digest};
use crate::files::names::{RelName, escape};
use crate::files::web::Web;
use crate::files::web::access::Mode;
use crate::files::web::body::{Reply, io_reply, json, plain};

/// What a whole-file `PUT` did.
pub enum Put {
    /// Stored; whether it replaced a file.
    Stored {
        /// Whether a file was there before.
        replaced: bool,
        /// The file's BLAKE3, hex.
        blake3: String,
    },
    /// The answer to send instead.
    Refused(Reply),
}

/// Receives a whole file of `req`'s body as `name` (replacing a file there only with
/// `replace`), through a fresh partial file: nothing of it is kept unless it arrives whole
/// (and matches its `Content-Digest`, when one is given). `mtime_ns`: the time to give it.
pub async fn receive_whole(
    req: Request<Incoming>,
    web: &Arc<Web>,
    name: &RelName,
    replace: bool,
    mtime_ns: i64,
) -> Put {
    let Some(len) = content_length(req.headers()) else {
        return Put::Refused(plain(
            StatusCode::LENGTH_REQUIRED,
            "Content-Length is needed\n",
        ));
    };
    let digest = sha256_digest(req.headers());
    let existed = crate::files::web::disk::stat(web, Some(name.clone()))
        .await
        .is_ok();
    let stamp = Stamp {
        size: len,
        mtime_ns,
    };
    let writer = match open(web, name, stamp, replace, true).await {
        Ok(w) => w,
        Err(e) => return Put::Refused(open_refused(&e)),
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let writing = tokio::task::spawn_blocking(move || -> io::Result<String> {
        let mut w = writer;
        let res = match feed(&mut w, &mut rx, len) {
            Ok((got, _)) if got < len => Err(io::Error::new(io::ErrorKind::Interrupted, "cut off")),
            Ok((_, sum)) if digest.is_some_and(|d| d != sum) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the body does not match its Content-Digest; discarded",
            )),
            Ok(_) => w.vouch(),
            Err(e) => Err(e),
        };
        w.end(res)
    });
    pump(req.into_body(), tx).await;
    match writing.await.unwrap_or_else(|e| Err(io::Error::other(e))) {
        Ok(blake3) => {
            info!(name = %escape(name.as_str()), size = len, %blake3, "upload verified (whole)");
            crate::metrics::service(crate::files::web::SERVICE).stored(len);
            Put::Stored {
                replaced: existed,
                blake3,
            }
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Put::Refused(plain(
            StatusCode::BAD_REQUEST,
            "the body was cut off; nothing kept\n",
        )),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Put::Refused(plain(StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")))
        }
        Err(e) => Put::Refused(io_reply(&e)),
    }
}

/// `PUT /FILE[?overwrite]`: a whole file in one request.
pub async fn whole(
    req: Request<Incoming>,
    web: &Arc<Web>,
    mode: Mode,
    name: RelName,
    replace: bool,
) -> Reply {
    if !mode.writes() {
        return plain(StatusCode::FORBIDDEN, "this server is read-only\n");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    match receive_whole(req, web, &name, replace, now).await {
        Put::Stored { replaced, blake3 } => {
            let status = if replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json(status, &json!({"blake3": blake3}))
        }
        Put::Refused(r) => r,
    }
}
