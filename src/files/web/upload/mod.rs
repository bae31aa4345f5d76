//! Uploads over HTTP, through the same partial file and [`Writer`] as `put`
//! ([`Partial`](crate::files::store::partial::Partial)): the verified part kept beside the
//! target under a temporary name, the file under its name only when whole.
//!
//! The page sends a file in chunks (at most [`Web::chunk`](crate::files::web::Web::chunk)
//! bytes each, so proxies that cap request bodies let them through), each with the SHA-256 of
//! its bytes in `Content-Digest` (RFC 9530): `POST ?upload&size=N&mtime=MS` asks where to
//! continue (0, or what an earlier attempt left held), then `PATCH ?offset=K&size=N&mtime=MS`
//! sends the bytes from there. The page keeps a few chunks in flight at once: the next one is
//! written as it arrives and its segments held once its digest matches, the ones after it are
//! received into memory, checked, and written in order when their turn comes
//! ([`turns`]); so the partial file only grows by verified chunks, contiguously. A chunk cut
//! off or not matching is forgotten (the partial file cut back to where it began, or the
//! memory let go), so the next try sends it again. Between chunks the upload stays open in
//! [`Sessions`] (for its writer and its lock on the partial file); an idle one, and every one
//! when the server stops, is closed with what it holds recorded, so a page reloaded, a network
//! back or a server started again resumes from there: size and modification time must match,
//! as for `put`.
//!
//! `PUT` sends a whole file in one request (curl `-T`, WebDAV), into the same writer.
//!
//! [`sessions`] keeps the uploads open between chunks, [`turns`] orders the chunks of one,
//! [`chunk`](mod@chunk) takes the page's requests, [`whole`](mod@whole) a whole file in one;
//! here, what they share: a request body pumped into a writer.
use std::io;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::files::store::writer::Writer;

pub mod chunk;
pub mod sessions;
pub mod turns;
pub mod whole;

pub use chunk::{chunk, start};
pub use sessions::{Sessions, reap};
pub use whole::{Put, receive_whole, whole};

/// Writes what arrives on `rx` (at most `len` bytes), hashing it with SHA-256; returns the
/// bytes written and their digest. An error is the disk's.
pub(super) fn feed(
    w: &mut Writer,
    rx: &mut mpsc::Receiver<Bytes>,
    len: u64,
) -> io::Result<(u64, [u8; 32])> {
    let mut sha = Sha256::new();
    let mut got = 0u64;
    while let Some(bytes) = rx.blocking_recv() {
        if got + bytes.len() as u64 > len {
            break; // more than announced: hyper's framing forbids it; treated as cut
        }
        w.write(&bytes)?;
        sha.update(&bytes);
        got += bytes.len() as u64;
    }
    Ok((got, sha.finalize().into()))
}

/// Sends the request body's bytes to the writer; stops at the body's end or error.
pub(super) async fn pump(mut body: Incoming, tx: mpsc::Sender<Bytes>) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return };
        if let Ok(data) = frame.into_data()
            && tx.send(data).await.is_err()
        {
            return;
        }
    }
}

/// `Content-Length`, if given and a number.
pub(super) fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The SHA-256 in a `Content-Digest` header (`sha-256=:BASE64:`, among others perhaps).
pub fn sha256_digest(h: &HeaderMap) -> Option<[u8; 32]> {
    let v = h.get("content-digest")?.to_str().ok()?;
    v.split(',').find_map(|item| {
        let (alg, val) = item.trim().split_once('=')?;
        if !alg.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let b64 = val.trim().strip_prefix(':')?.strip_suffix(':')?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()?
            .try_into()
            .ok()
    })
}
