//! The uploads open between chunks, by name: each holds its writer (and so the lock on its
//! partial file), what a resume must match and the chunks in flight ([`Upload`]); idle ones
//! are closed with what they hold recorded, as is every one when the server stops.
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub(super) use super::turns::Stamp;
use super::turns::{BUDGET_KIB, Upload};
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
pub struct Sessions {
    map: Mutex<HashMap<String, Slot>>,
    closed: AtomicBool,
    /// Room for chunks received ahead of their turn, across uploads (KiB).
    pub(super) budget: Arc<Semaphore>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            map: Mutex::default(),
            closed: AtomicBool::new(false),
            budget: Arc::new(Semaphore::new(BUDGET_KIB as usize)),
        }
    }
}

enum Slot {
    /// Its partial file is being opened.
    Opening,
    Open(Arc<Upload>),
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the server is stopping (a writer put back now is closed instead).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Forgets `up` (it ended), unless another upload took its name meanwhile.
    pub(super) fn forget(&self, name: &str, up: &Upload) {
        up.end();
        let mut map = self.lock();
        if matches!(map.get(name), Some(Slot::Open(u)) if std::ptr::eq(Arc::as_ptr(u), up)) {
            map.remove(name);
        }
    }

    /// Removes and returns the uploads with nothing in flight (idle for longer than `older`,
    /// if given), their writers taken to be closed.
    fn take_idle(&self, older: Option<Duration>) -> Vec<Writer> {
        let mut map = self.lock();
        let mut writers = Vec::new();
        map.retain(|_, slot| match slot {
            Slot::Open(up) => match up.take_if_idle(older) {
                Some(w) => {
                    writers.push(w);
                    false
                }
                None => true,
            },
            Slot::Opening => true,
        });
        writers
    }

    /// Closes every idle upload, recording what it holds; uploads busy with a chunk close
    /// when it ends. For the server's stop.
    pub async fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = self.take_idle(None);
        let n = idle.len();
        let _ =
            tokio::task::spawn_blocking(move || idle.into_iter().for_each(|w| w.interrupt())).await;
        if n > 0 {
            info!(uploads = n, "unfinished uploads recorded, to resume");
        }
    }
}

/// Closes uploads idle longer than `IDLE` (ten minutes), every half minute until `stop`.
pub async fn reap(web: Arc<Web>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        let stale = web.uploads.take_idle(Some(IDLE));
        if !stale.is_empty() {
            let _ =
                tokio::task::spawn_blocking(move || stale.into_iter().for_each(|w| w.interrupt()))
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

/// The upload of `name` for `stamp`: the open one, or one opened now (an open one for another
/// file of the same name is closed first, if nothing of it is in flight). `Err` is the answer.
pub(super) async fn upload(
    web: &Web,
    name: &RelName,
    stamp: Stamp,
    overwrite: bool,
) -> Result<Arc<Upload>, Reply> {
    let busy = || {
        json(
            StatusCode::CONFLICT,
            &json!({"error": "a chunk of this file is being received"}),
        )
    };
    let old = {
        let mut map = web.uploads.lock();
        match map.get(name.as_str()) {
            Some(Slot::Open(up)) if up.stamp == stamp && !up.is_gone() => return Ok(up.clone()),
            Some(Slot::Opening) => return Err(busy()),
            Some(Slot::Open(up)) => {
                // Another file under the same name now: the old one's held part stays until
                // the partial file is opened for this one, which starts it over.
                let up = up.clone();
                if !up.is_gone() && !up.idle() {
                    return Err(busy());
                }
                map.insert(name.as_str().to_string(), Slot::Opening);
                up.take_if_idle(None)
            }
            None if map.len() >= MAX_OPEN => {
                return Err(json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": "too many uploads at once; try again"}),
                ));
            }
            None => {
                map.insert(name.as_str().to_string(), Slot::Opening);
                None
            }
        }
    };
    if let Some(w) = old {
        let _ = tokio::task::spawn_blocking(move || w.interrupt()).await;
    }
    let opened = open(web, name, stamp, overwrite, false).await;
    let mut map = web.uploads.lock();
    match opened {
        Ok(writer) => {
            let up = Arc::new(Upload::new(stamp, writer));
            map.insert(name.as_str().to_string(), Slot::Open(up.clone()));
            Ok(up)
        }
        Err(e) => {
            map.remove(name.as_str());
            Err(open_refused(&e))
        }
    }
}
