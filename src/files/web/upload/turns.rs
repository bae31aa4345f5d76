//! One upload open between chunks, with several chunks in flight at once: each chunk first
//! claims its byte range (refused if it overlaps what is held or another chunk's claim, or
//! lies too far ahead), then is either streamed into the writer (it is the next one and the
//! writer is free) or received into memory and checked against its digest while earlier ones
//! arrive, and written when the file's verified part reaches it. So the file on disk only
//! ever grows by whole, verified chunks in order, and a resume starts where that part ends.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::files::store::writer::Writer;

/// How long a chunk received ahead waits, once nobody is sending the chunk before it, before
/// it gives up (the client is told where to continue).
const GAP_WAIT: Duration = Duration::from_secs(10);
/// How long a chunk waits for room to be held in memory (or for its turn) before it is
/// refused with "try again".
const ROOM_WAIT: Duration = Duration::from_secs(30);

/// What a resume must match: the file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
}

/// An upload under way (see the module's doc).
pub struct Upload {
    /// What a resume must match.
    pub(super) stamp: Stamp,
    inner: Mutex<Inner>,
    /// Woken whenever the writer moves on or a claim ends.
    turn: Notify,
}

pub(super) struct Inner {
    /// `None` while a chunk writes with it, or once the upload ended.
    writer: Option<Writer>,
    /// Bytes held (the writer's, when it was last put back).
    held: u64,
    /// Chunks in flight: start → end.
    claims: BTreeMap<u64, u64>,
    /// When a chunk last ended.
    pub(super) last: Instant,
    /// Ended (complete, failed or closed): no chunk may use it any more.
    gone: bool,
}

/// Why a claim was refused: the answer says where the upload continues.
pub enum Refused {
    /// The range is held already, overlaps a chunk in flight, or lies too far ahead.
    Conflict(u64),
    /// The upload ended meanwhile: ask again.
    Gone,
}

/// How a claimed chunk is to be received.
pub enum Receive {
    /// It is the next one: straight into the writer.
    Direct(Box<Writer>),
    /// Into memory (this much of the budget), written when its turn comes.
    Ahead(OwnedSemaphorePermit),
}

impl Upload {
    /// A new upload around `writer`.
    pub(super) fn new(stamp: Stamp, writer: Writer) -> Upload {
        Upload {
            stamp,
            inner: Mutex::new(Inner {
                held: writer.held(),
                writer: Some(writer),
                claims: BTreeMap::new(),
                last: Instant::now(),
                gone: false,
            }),
            turn: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held, where a resume continues.
    pub fn held(&self) -> u64 {
        self.lock().held
    }

    /// Claims `offset..offset + len` for one chunk; `ahead` is how far past what is held a
    /// chunk may start.
    pub fn claim(self: &Arc<Self>, offset: u64, len: u64, ahead: u64) -> Result<Claim, Refused> {
        let mut inner = self.lock();
        if inner.gone {
            return Err(Refused::Gone);
        }
        let held = inner.held;
        // An empty chunk (an empty file) still takes its place.
        let end = offset + len.max(1);
        let overlaps = inner
            .claims
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > offset);
        if offset < held || offset - held > ahead || overlaps {
            return Err(Refused::Conflict(held));
        }
        inner.claims.insert(offset, end);
        Ok(Claim {
            up: self.clone(),
            offset,
        })
    }

    /// Puts the writer back after a chunk (or, when the server is `closing`, closes it with
    /// what it holds recorded). Blocking.
    pub(super) fn give_back(&self, closing: bool, writer: Writer) {
        {
            let mut inner = self.lock();
            inner.held = writer.held();
            inner.last = Instant::now();
            if !closing {
                inner.writer = Some(writer);
                drop(inner);
                self.turn.notify_waiters();
                return;
            }
            inner.gone = true;
        }
        self.turn.notify_waiters();
        writer.interrupt();
    }

    /// Marks the upload ended (its writer was ended by the caller).
    pub(super) fn end(&self) {
        self.lock().gone = true;
        self.turn.notify_waiters();
    }

    /// Takes the writer if nothing is in flight: to close the upload. Marks it gone.
    pub(super) fn take_if_idle(&self, older_than: Option<Duration>) -> Option<Writer> {
        let mut inner = self.lock();
        let old = older_than.is_none_or(|d| inner.last.elapsed() > d);
        if inner.gone || !inner.claims.is_empty() || !old {
            return None;
        }
        let w = inner.writer.take()?;
        inner.gone = true;
        Some(w)
    }

    /// Whether it ended (complete, failed or closed).
    pub(super) fn is_gone(&self) -> bool {
        self.lock().gone
    }

    /// Whether no chunk is in flight.
    pub(super) fn idle(&self) -> bool {
        self.lock().claims.is_empty()
    }

    /// Runs `ready` under the lock until it returns something, waking on every change; `None`
    /// once the upload is gone or `deadline` passed.
    async fn until<T>(
        &self,
        deadline: tokio::time::Instant,
        mut ready: impl FnMut(&mut Inner) -> Option<T>,
    ) -> Option<T> {
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.gone {
                    return None;
                }
                if let Some(t) = ready(&mut inner) {
                    return Some(t);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// One chunk's claim on its range; let go when dropped (whatever became of the chunk).
pub struct Claim {
    up: Arc<Upload>,
    offset: u64,
}

impl Claim {
    /// The upload claimed in.
    pub fn upload(&self) -> &Arc<Upload> {
        &self.up
    }

    /// Waits until the chunk can be received: straight into the writer when it is the next
    /// one, else into memory once `budget` has room for `len` bytes. `None`: the upload ended
    /// or no room came in time.
    pub async fn receive(&self, budget: &Arc<Semaphore>, len: u64) -> Option<Receive> {
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(BUDGET_KIB);
        loop {
            let notified = self.up.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.up.lock();
                if inner.gone {
                    return None;
                }
                if inner.held == self.offset
                    && let Some(w) = inner.writer.take()
                {
                    return Some(Receive::Direct(Box::new(w)));
                }
            }
            tokio::select! {
                p = budget.clone().acquire_many_owned(kib) => return p.ok().map(Receive::Ahead),
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Waits for the chunk's turn (what is held reaching its offset) and takes the writer.
    /// `None`: the upload ended, or nobody sent the chunk before it for ten seconds.
    pub async fn turn(&self) -> Option<Writer> {
        let mut gap_since: Option<Instant> = None;
        loop {
            let step = tokio::time::Instant::now() + Duration::from_secs(1);
            let got = self
                .up
                .until(step, |inner| {
                    if inner.held == self.offset {
                        return inner.writer.take().map(Some);
                    }
                    // Someone sending the chunk the writer needs next counts as progress.
                    if inner.claims.contains_key(&inner.held) {
                        gap_since = None;
                    } else if gap_since.get_or_insert_with(Instant::now).elapsed() > GAP_WAIT {
                        return Some(None);
                    }
                    None
                })
                .await;
            match got {
                Some(w) => return w,
                None if self.up.lock().gone => return None,
                None => {}
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.up.lock().claims.remove(&self.offset);
        self.up.turn.notify_waiters();
    }
}

/// Bytes of chunks held in memory at once, across all uploads, in KiB (128 MiB); a chunk
/// bigger than that asks for all of it.
pub const BUDGET_KIB: u32 = 128 * 1024;
