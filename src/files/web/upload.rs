//! Uploads over HTTP, through the same [`Partial`] and [`Writer`] as `put`: the verified part
//! kept beside the target under a temporary name, the file under its name only when whole.
//!
//! The page sends a file in chunks (at most [`Web::chunk`] bytes each, so proxies that cap
//! request bodies let them through), each with the SHA-256 of its bytes in `Content-Digest`
//! (RFC 9530): `POST ?upload&size=N&mtime=MS` asks where to continue (0, or what an earlier
//! attempt left held), then `PATCH ?offset=K&size=N&mtime=MS` sends the bytes from there. A
//! chunk is written as it arrives and its segments held once its digest matches; a chunk cut
//! off or not matching is forgotten (the partial file cut back to where it began), so the
//! next try sends it again. Between chunks the upload stays open in [`Sessions`] (for its
//! writer and its lock on the partial file); an idle one, and every one when the server stops,
//! is closed with what it holds recorded, so a page reloaded, a network back or a server
//! started again resumes from there: size and modification time must match, as for `put`.
//!
//! `PUT` sends a whole file in one request (curl `-T`, WebDAV), into the same writer.
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Web;
use super::access::Mode;
use super::body::io_reply;
use super::body::{Reply, json, plain};
use crate::files::names::{RelName, escape};
use crate::files::protocol::FileHeader;
use crate::files::store::partial::{NoSpace, Partial};
use crate::files::store::writer::Writer;
use crate::files::tree::SEGMENT;
use crate::web::query_param;

/// Uploads open at once; more wait for one to finish or go idle.
const MAX_OPEN: usize = 256;
/// An upload with no chunk for this long is closed (its held part stays, to resume).
const IDLE: Duration = Duration::from_secs(600);

/// Uploads under way, by name.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Slot>>,
    closed: AtomicBool,
}

enum Slot {
    /// Between chunks.
    Idle(Box<Session>),
    /// A chunk is being written.
    Busy,
}

struct Session {
    writer: Writer,
    stamp: Stamp,
    last: Instant,
}

/// What a resume must match: the file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a session back between chunks (or closes it when the server is stopping).
    fn put_back(&self, name: &str, session: Session) {
        if self.closed.load(Ordering::Acquire) {
            self.lock().remove(name);
            session.writer.interrupt();
            return;
        }
        self.lock()
            .insert(name.to_string(), Slot::Idle(Box::new(session)));
    }

    fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Closes every idle upload, recording what it holds; uploads busy with a chunk close
    /// when it ends. For the server's stop.
    pub async fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        let idle: Vec<Session> = {
            let mut map = self.lock();
            let names: Vec<String> = map
                .iter()
                .filter(|(_, s)| matches!(s, Slot::Idle(_)))
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| match map.remove(&n) {
                    Some(Slot::Idle(s)) => Some(*s),
                    _ => None,
                })
                .collect()
        };
        let n = idle.len();
        let _ = tokio::task::spawn_blocking(move || {
            idle.into_iter().for_each(|s| s.writer.interrupt())
        })
        .await;
        if n > 0 {
            info!(uploads = n, "unfinished uploads recorded, to resume");
        }
    }

    /// Takes the idle session of `name`, if any; `Err` while one of its chunks is busy.
    fn take(&self, name: &str) -> Result<Option<Session>, ()> {
        let mut map = self.lock();
        match map.remove(name) {
            None => Ok(None),
            Some(Slot::Busy) => {
                map.insert(name.to_string(), Slot::Busy);
                Err(())
            }
            Some(Slot::Idle(s)) => {
                map.insert(name.to_string(), Slot::Busy);
                Ok(Some(*s))
            }
        }
    }

    /// Marks `name` busy for a session about to be opened; `false` when full or taken.
    fn reserve(&self, name: &str) -> bool {
        let mut map = self.lock();
        if map.len() >= MAX_OPEN || map.contains_key(name) {
            return false;
        }
        map.insert(name.to_string(), Slot::Busy);
        true
    }
}

/// Closes uploads idle longer than [`IDLE`], every half minute until `stop`.
pub async fn reap(web: Arc<Web>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        let stale: Vec<Session> = {
            let mut map = web.uploads.lock();
            let old: Vec<String> = map
                .iter()
                .filter(|(_, s)| matches!(s, Slot::Idle(x) if x.last.elapsed() > IDLE))
                .map(|(n, _)| n.clone())
                .collect();
            old.iter()
                .filter_map(|n| match map.remove(n) {
                    Some(Slot::Idle(s)) => Some(*s),
                    _ => None,
                })
                .collect()
        };
        if !stale.is_empty() {
            let _ = tokio::task::spawn_blocking(move || {
                stale.into_iter().for_each(|s| s.writer.interrupt())
            })
            .await;
        }
    }
}

/// The query's size, mtime (ms) and overwrite flag.
fn stamp_of(query: Option<&str>) -> Result<(Stamp, bool), Reply> {
    let num = |k: &str| query_param(query, k).and_then(|v| v.parse::<i64>().ok());
    let size = query_param(query, "size").and_then(|v| v.parse::<u64>().ok());
    let Some(size) = size else {
        return Err(plain(StatusCode::BAD_REQUEST, "size=BYTES is needed\n"));
    };
    let mtime_ns = num("mtime").unwrap_or(0).saturating_mul(1_000_000);
    let overwrite = query_param(query, "overwrite").is_some_and(|v| v != "0");
    Ok((Stamp { size, mtime_ns }, overwrite))
}

/// Opens the partial file of `name` for `stamp` (resuming what it holds when the stamp
/// matches) and its writer, off the async workers.
async fn open(
    web: &Web,
    name: &RelName,
    stamp: Stamp,
    overwrite: bool,
    fresh: bool,
) -> io::Result<Writer> {
    let header = FileHeader {
        name: name.as_str().to_string(),
        size: stamp.size,
        mode: 0o644,
        mtime_ns: stamp.mtime_ns,
    };
    let (root, name) = (web.state.root.clone(), name.clone());
    tokio::task::spawn_blocking(move || {
        let p = Partial::open_with(&root, &name, &header, overwrite, fresh)?;
        Writer::start(p)
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The answer to a refused open: `409` with `exists` for a name already taken (the page asks
/// before replacing), `507` for a full disk.
fn open_refused(e: &io::Error) -> Reply {
    match e.kind() {
        io::ErrorKind::AlreadyExists => {
            let exists = !e.to_string().contains(crate::files::partial::BUSY);
            let error = if exists {
                "a file of this name exists".to_string()
            } else {
                e.to_string()
            };
            json(
                StatusCode::CONFLICT,
                &json!({"error": error, "exists": exists}),
            )
        }
        _ => io_reply(e),
    }
}

/// A session for `name` and `stamp`: the idle one, or one opened now. `Err` is the answer.
async fn session(
    web: &Web,
    name: &RelName,
    stamp: Stamp,
    overwrite: bool,
) -> Result<Session, Reply> {
    let busy = || {
        json(
            StatusCode::CONFLICT,
            &json!({"error": "a chunk of this file is being received"}),
        )
    };
    match web.uploads.take(name.as_str()) {
        Err(()) => return Err(busy()),
        Ok(Some(s)) if s.stamp == stamp => return Ok(s),
        Ok(Some(s)) => {
            // Another file under the same name now: the old one's held part stays until the
            // partial file is opened for this one, which starts it over.
            let _ = tokio::task::spawn_blocking(move || s.writer.interrupt()).await;
        }
        Ok(None) if !web.uploads.reserve(name.as_str()) => {
            return Err(json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "too many uploads at once; try again"}),
            ));
        }
        Ok(None) => {}
    }
    match open(web, name, stamp, overwrite, false).await {
        Ok(writer) => Ok(Session {
            writer,
            stamp,
            last: Instant::now(),
        }),
        Err(e) => {
            web.uploads.forget(name.as_str());
            Err(open_refused(&e))
        }
    }
}

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
            crate::metrics::service(super::SERVICE).stored(stamp.size);
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

/// Writes what arrives on `rx` (at most `len` bytes), hashing it with SHA-256; returns the
/// bytes written and their digest. An error is the disk's.
fn feed(w: &mut Writer, rx: &mut mpsc::Receiver<Bytes>, len: u64) -> io::Result<(u64, [u8; 32])> {
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
async fn pump(mut body: Incoming, tx: mpsc::Sender<Bytes>) {
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
fn content_length(h: &HeaderMap) -> Option<u64> {
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
    let existed = super::disk::stat(web, Some(name.clone())).await.is_ok();
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
            crate::metrics::service(super::SERVICE).stored(len);
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
