//! The page's chunked uploads: `POST ?upload` asks where to continue, `PATCH ?offset=K`
//! sends one chunk (its SHA-256 in `Content-Digest`), held once whole and matching. Several
//! chunks of a file may be in flight at once (see [`turns`](super::turns)): the next one is
//! written as it arrives, later ones are received into memory, checked, and written in order.
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::sessions::{stamp_of, upload};
use super::turns::{Receive, Refused, Upload};
use super::{content_length, feed, pump, sha256_digest};
use crate::files::names::{RelName, escape};
use crate::files::store::partial::NoSpace;
use crate::files::store::writer::Writer;
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
    match upload(web, &name, stamp, overwrite).await {
        Ok(up) => json(
            StatusCode::OK,
            &json!({"offset": up.held(), "size": stamp.size, "chunk": web.chunk, "ahead": AHEAD}),
        ),
        Err(r) => r,
    }
}

/// How many chunks past what is held a chunk may start (the page sends fewer at once).
pub const AHEAD: u64 = 8;

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
    if !offset.is_multiple_of(SEGMENT) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("a chunk starts where a {SEGMENT}-byte segment does; nothing written\n"),
        );
    }
    if offset + len != stamp.size && !len.is_multiple_of(SEGMENT) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("a chunk other than the last is a multiple of {SEGMENT} bytes\n"),
        );
    }
    let up = match upload(web, &name, stamp, overwrite).await {
        Ok(up) => up,
        Err(r) => return r,
    };
    let claim = match up.claim(offset, len, AHEAD * web.chunk) {
        Ok(c) => c,
        Err(Refused::Conflict(held)) => {
            let error = format!(
                "the upload continues at {held}; a chunk at {offset} overlaps what is held or \
                 on its way, or lies too far ahead; nothing written"
            );
            return json(
                StatusCode::CONFLICT,
                &json!({"error": error, "offset": held}),
            );
        }
        Err(Refused::Gone) => return gone(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let (web2, name2, up2) = (web.clone(), name.clone(), up.clone());
    let fed = match claim.receive(&web.uploads.budget, len).await {
        None if up.is_gone() => return gone(),
        None => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "too many chunks on their way; try again"}),
            );
        }
        Some(Receive::Direct(w)) => {
            let writing = tokio::task::spawn_blocking(move || {
                write_chunk(&web2, &name2, &up2, *w, rx, len, digest)
            });
            pump(req.into_body(), tx).await;
            writing
                .await
                .unwrap_or_else(|e| Fed::Failed(io::Error::other(e)))
        }
        Some(Receive::Ahead(_room)) => {
            let receiving = tokio::task::spawn_blocking(move || collect(rx, len));
            pump(req.into_body(), tx).await;
            let (parts, got, sum) = match receiving.await {
                Ok(r) => r,
                Err(e) => return io_reply(&io::Error::other(e)),
            };
            let shown = escape(name.as_str());
            let checked = if got < len {
                Err("cut")
            } else if sum != digest {
                Err("digest")
            } else {
                Ok(())
            };
            if let Err(why) = checked {
                info!(name = %shown, offset, bytes = got, outcome = why, "upload chunk");
                Fed::Again(why, up.held())
            } else {
                let Some(w) = claim.turn().await else {
                    info!(name = %shown, offset, bytes = got, outcome = "dropped", "upload chunk");
                    if up.is_gone() {
                        return gone();
                    }
                    let held = up.held();
                    let error = format!(
                        "the chunks before {offset} did not come; the upload continues at {held}"
                    );
                    return json(
                        StatusCode::CONFLICT,
                        &json!({"error": error, "offset": held}),
                    );
                };
                tokio::task::spawn_blocking(move || {
                    write_received(&web2, &name2, &up2, w, &parts, offset)
                })
                .await
                .unwrap_or_else(|e| Fed::Failed(io::Error::other(e)))
            }
        }
    };
    drop(claim);
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

/// The answer when the upload ended under a chunk: the page asks again where to continue.
fn gone() -> Reply {
    json(
        StatusCode::CONFLICT,
        &json!({"error": "the upload ended meanwhile; ask where to continue"}),
    )
}

/// Receives a chunk ahead of its turn into memory: its parts, how many bytes came, their
/// SHA-256. Blocking.
fn collect(mut rx: mpsc::Receiver<Bytes>, len: u64) -> (Vec<Bytes>, u64, [u8; 32]) {
    let mut sha = Sha256::new();
    let (mut parts, mut got) = (Vec::new(), 0u64);
    while let Some(bytes) = rx.blocking_recv() {
        if got + bytes.len() as u64 > len {
            break; // more than announced: treated as cut
        }
        sha.update(&bytes);
        got += bytes.len() as u64;
        parts.push(bytes);
    }
    (parts, got, sha.finalize().into())
}

/// A chunk received ahead (and checked) into the writer, now that its turn came. Blocking.
fn write_received(
    web: &Web,
    name: &RelName,
    up: &Upload,
    mut w: Writer,
    parts: &[Bytes],
    offset: u64,
) -> Fed {
    let bytes: u64 = parts.iter().map(|b| b.len() as u64).sum();
    let shown = escape(name.as_str());
    match parts.iter().try_for_each(|b| w.write(b)) {
        Ok(()) => {
            info!(name = %shown, offset, bytes, outcome = "held", "upload chunk");
            settle(web, name, up, w)
        }
        Err(e) => {
            info!(name = %shown, offset, error = %e, outcome = "failed", "upload chunk");
            web.uploads.forget(name.as_str(), up);
            Fed::Failed(
                w.end(Err(e))
                    .err()
                    .unwrap_or_else(|| io::Error::other("write failed")),
            )
        }
    }
}

/// After a chunk's bytes went in and were checked: holds them, and commits the file when
/// it is complete, or puts the writer back for the next chunk. Blocking.
fn settle(web: &Web, name: &RelName, up: &Upload, mut w: Writer) -> Fed {
    if let Err(e) = w.vouch() {
        web.uploads.forget(name.as_str(), up);
        return Fed::Failed(
            w.end(Err(e))
                .err()
                .unwrap_or_else(|| io::Error::other("journal failed")),
        );
    }
    if w.complete() {
        web.uploads.forget(name.as_str(), up);
        return match w.end(Ok(())) {
            Ok(hash) => Fed::Done(hash),
            Err(e) => Fed::Failed(e),
        };
    }
    let at = w.held();
    up.give_back(web.uploads.is_closed(), w);
    Fed::Held(at)
}

/// The next chunk's bytes straight into the writer, checked once all in. Blocking; the
/// writer goes back (or the upload ends) whatever happens.
fn write_chunk(
    web: &Web,
    name: &RelName,
    up: &Upload,
    mut w: Writer,
    mut rx: mpsc::Receiver<Bytes>,
    len: u64,
    digest: [u8; 32],
) -> Fed {
    let offset = w.held();
    let fed = feed(&mut w, &mut rx, len);
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
    let again = |mut w: Writer, why| match w.rewind() {
        Ok(()) => {
            let at = w.held();
            up.give_back(web.uploads.is_closed(), w);
            Fed::Again(why, at)
        }
        Err(e) => {
            web.uploads.forget(name.as_str(), up);
            Fed::Failed(
                w.end(Err(e))
                    .err()
                    .unwrap_or_else(|| io::Error::other("rewind failed")),
            )
        }
    };
    match fed {
        Err(e) => {
            web.uploads.forget(name.as_str(), up);
            Fed::Failed(
                w.end(Err(e))
                    .err()
                    .unwrap_or_else(|| io::Error::other("write failed")),
            )
        }
        Ok((got, _)) if got < len => again(w, "cut"),
        Ok((_, sum)) if sum != digest => again(w, "digest"),
        Ok(_) => settle(web, name, up, w),
    }
}
