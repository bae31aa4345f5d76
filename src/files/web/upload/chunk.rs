//! The page's chunked uploads: `POST ?upload` asks where to continue, `PATCH ?offset=K`
//! sends one chunk (its SHA-256 in `Content-Digest`), held once whole and matching.
use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::sessions::{Session, session, stamp_of};
use super::{content_length, feed, pump, sha256_digest};
use crate::files::names::{RelName, escape};
use crate::files::store::partial::NoSpace;
use crate::files::tree::SEGMENT;
use crate::files::web::Web;
use crate::files::web::access::Mode;
use crate::files::web::body::{Reply, io_reply, json, plain};
use crate::web::query_param;

/// `POST /FILE?upload&size=N&mtime=MS[&overwrite=1]`: where the upload continues.
pub async fn start(req: Request<Incoming>, web: &Arc<Web>, mode: Mode, name: RelName) -> Reply {
    if !mode.writes() {
        return plain(StatusCode::FORBIDDEN, "this server is read-only\n");
    }
    let (stamp, overwrite) = match stamp_of(req.uri().query()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match session(web, &name, stamp, overwrite).await {
        Ok(s) => {
            let offset = s.writer.held();
            web.uploads.put_back(name.as_str(), s);
            json(
                StatusCode::OK,
                &json!({"offset": offset, "size": stamp.size, "chunk": web.chunk}),
            )
        }
        Err(r) => r,
    }
}

/// How one chunk's bytes went.
enum Fed {
    /// All in, digest matched: held.
    Held(u64),
    /// All in and the file complete: committed, with its BLAKE3.
    Done(String),
    /// Cut off, or the digest did not match: forgotten, to be sent again.
    Again(&'static str, u64),
    /// The file could not be written (disk full, refused): what is held stays if it can.
    Failed(io::Error),
}

/// `PATCH /FILE?offset=K&size=N&mtime=MS`: one chunk.
pub async fn chunk(req: Request<Incoming>, web: &Arc<Web>, mode: Mode, name: RelName) -> Reply {
    if !mode.writes() {
        return plain(StatusCode::FORBIDDEN, "this server is read-only\n");
    }
    let query = req.uri().query().map(str::to_string);
    let (stamp, overwrite) = match stamp_of(query.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(offset) = query_param(query.as_deref(), "offset").and_then(|v| v.parse::<u64>().ok())
    else {
        return plain(StatusCode::BAD_REQUEST, "offset=BYTES is needed\n");
    };
    let Some(len) = content_length(req.headers()) else {
        return plain(StatusCode::LENGTH_REQUIRED, "Content-Length is needed\n");
    };
    let Some(digest) = sha256_digest(req.headers()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "Content-Digest: sha-256=:BASE64: is needed\n",
        );
    };
    if len > web.chunk {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a chunk is {} bytes at most\n", web.chunk),
        );
    }
    if offset.checked_add(len).is_none_or(|end| end > stamp.size) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the chunk goes beyond the declared size; nothing written\n",
        );
    }
    if offset + len != stamp.size && !len.is_multiple_of(SEGMENT) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("a chunk other than the last is a multiple of {SEGMENT} bytes\n"),
        );
    }
    let s = match session(web, &name, stamp, overwrite).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let held = s.writer.held();
    if offset != held {
        web.uploads.put_back(name.as_str(), s);
        let error = format!("the upload continues at {held}, not {offset}; nothing written");
        return json(
            StatusCode::CONFLICT,
            &json!({"error": error, "offset": held}),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let (web2, name2) = (web.clone(), name.clone());
    let writing =
        tokio::task::spawn_blocking(move || write_chunk(&web2, &name2, s, rx, len, digest));
    pump(req.into_body(), tx).await;
    let fed = writing
        .await
        .unwrap_or_else(|e| Fed::Failed(io::Error::other(e)));
    let shown = escape(name.as_str());
    match fed {
        Fed::Held(at) => json(
            StatusCode::OK,
            &json!({"offset": at, "size": stamp.size, "done": false}),
        ),
        Fed::Done(blake3) => {
            info!(name = %shown, size = stamp.size, %blake3, "upload verified");
            crate::metrics::service(crate::files::web::SERVICE).stored(stamp.size);
            json(
                StatusCode::CREATED,
                &json!({"offset": stamp.size, "size": stamp.size, "done": true, "blake3": blake3}),
            )
        }
        Fed::Again(why, at) => {
            let status = if why == "digest" {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            let error = match why {
                "digest" => "the chunk's bytes do not match its Content-Digest; send it again",
                _ => "the chunk was cut off; send it again",
            };
            json(status, &json!({"error": error, "offset": at}))
        }
        Fed::Failed(e) => {
            warn!(name = %shown, offset, error = %e, "upload failed");
            match NoSpace::of(&e) {
                Some(full) => json(
                    StatusCode::INSUFFICIENT_STORAGE,
                    &json!({"error": full.to_string(), "kept": full.kept}),
                ),
                None => io_reply(&e),
            }
        }
    }
}

/// The chunk's bytes into the session's writer, on a blocking thread; the session goes back
/// (or is closed) whatever happens.
fn write_chunk(
    web: &Web,
    name: &RelName,
    mut s: Session,
    mut rx: mpsc::Receiver<Bytes>,
    len: u64,
    digest: [u8; 32],
) -> Fed {
    let offset = s.writer.held();
    let fed = feed(&mut s.writer, &mut rx, len);
    s.last = Instant::now();
    // One line per chunk, however its request ended (even cut at the server's stop): what
    // arrived, and whether it was held. A reader adds up what crossed twice.
    let shown = escape(name.as_str());
    match &fed {
        Ok((got, sum)) => {
            let outcome = if *got < len {
                "cut"
            } else if *sum != digest {
                "digest"
            } else {
                "held"
            };
            info!(name = %shown, offset, bytes = got, outcome, "upload chunk");
        }
        Err(e) => info!(name = %shown, offset, error = %e, outcome = "failed", "upload chunk"),
    }
    let again = |mut s: Session, why| match s.writer.rewind() {
        Ok(()) => {
            let at = s.writer.held();
            web.uploads.put_back(name.as_str(), s);
            Fed::Again(why, at)
        }
        Err(e) => {
            web.uploads.forget(name.as_str());
            Fed::Failed(
                s.writer
                    .end(Err(e))
                    .err()
                    .unwrap_or_else(|| io::Error::other("rewind failed")),
            )
        }
    };
    match fed {
        Err(e) => {
            web.uploads.forget(name.as_str());
            Fed::Failed(
                s.writer
                    .end(Err(e))
                    .err()
                    .unwrap_or_else(|| io::Error::other("write failed")),
            )
        }
        Ok((got, _)) if got < len => again(s, "cut"),
        Ok((_, sum)) if sum != digest => again(s, "digest"),
        Ok(_) => {
            if let Err(e) = s.writer.vouch() {
                web.uploads.forget(name.as_str());
                return Fed::Failed(
                    s.writer
                        .end(Err(e))
                        .err()
                        .unwrap_or_else(|| io::Error::other("journal failed")),
                );
            }
            if s.writer.complete() {
                web.uploads.forget(name.as_str());
                return match s.writer.end(Ok(())) {
                    Ok(hash) => Fed::Done(hash),
                    Err(e) => Fed::Failed(e),
                };
            }
            let at = s.writer.held();
            web.uploads.put_back(name.as_str(), s);
            Fed::Held(at)
        }
    }
}
