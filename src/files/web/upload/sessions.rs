//! The uploads open between chunks, by name: each holds its writer (and so the lock on its
//! partial file) and what a resume must match; idle ones are closed with what they hold
//! recorded, as is every one when the server stops.
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::files::names::RelName;
use crate::files::protocol::FileHeader;
use crate::files::store::partial::Partial;
use crate::files::store::writer::Writer;
use crate::files::web::Web;
use crate::files::web::body::{Reply, io_reply, json, plain};
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

pub(super) struct Session {
    pub(super) writer: Writer,
    pub(super) stamp: Stamp,
    pub(super) last: Instant,
}

/// What a resume must match: the file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a session back between chunks (or closes it when the server is stopping).
    pub(super) fn put_back(&self, name: &str, session: Session) {
        if self.closed.load(Ordering::Acquire) {
            self.lock().remove(name);
            session.writer.interrupt();
            return;
        }
        self.lock()
            .insert(name.to_string(), Slot::Idle(Box::new(session)));
    }

    pub(super) fn forget(&self, name: &str) {
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

/// Closes uploads idle longer than `IDLE` (ten minutes), every half minute until `stop`.
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
pub(super) fn stamp_of(query: Option<&str>) -> Result<(Stamp, bool), Reply> {
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
pub(super) async fn open(
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
pub(super) fn open_refused(e: &io::Error) -> Reply {
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
pub(super) async fn session(
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
