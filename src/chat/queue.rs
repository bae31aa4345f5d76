//! One member's outbound side: the socket it is written to and the bounded queue of shared
//! `Bytes` posts the socket has not taken yet.
//!
//! Flow control: past [`QueueLimits::high`] queued lines a member is *behind* and closes its
//! room's [`Gate`] (the room's senders stop being read) until it drains to half of that. It is
//! dropped only when it stops draining — its oldest queued line older than
//! [`QueueLimits::max_lag`] — or its queue passes [`QueueLimits::max_bytes`].
//!
//! Whoever delivers a post writes it straight to the member's socket when nothing is queued
//! ahead of it, so a member that keeps up costs one `writev` per post and no task wake-up.
//! Only what the socket does not take is queued; the member's own task then waits for the
//! socket to become writable and flushes. Both write under the member's lock, so lines keep
//! their order.
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::gate::Gate;
use super::post::MemberId;
use crate::server::Conn;

/// Buffers handed to one vectored write.
const IOV_MAX: usize = 64;

/// When a member is behind, and when it is dropped.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Queued lines past which the member is behind (its room's senders wait).
    pub high: usize,
    /// A member whose oldest queued line is older than this has stopped draining.
    pub max_lag: Duration,
    /// Queued bytes past which a member is dropped, however fresh its lines.
    pub max_bytes: usize,
}

impl QueueLimits {
    /// Limits with `high` lines and generous defaults otherwise (for tests).
    pub fn lines(high: usize) -> Self {
        QueueLimits {
            high,
            max_lag: Duration::from_secs(10),
            max_bytes: 64 << 20,
        }
    }
}

/// One member's outbound side, shared by whoever delivers posts and by the member's task.
#[derive(Debug)]
pub struct Member {
    id: MemberId,
    out: Mutex<Outq>,
    wake: Notify,
    limits: QueueLimits,
}

/// A queued buffer: its bytes, when it was queued, and how many lines it holds.
#[derive(Debug)]
struct Queued {
    data: Bytes,
    at: Instant,
    lines: usize,
}

#[derive(Debug, Default)]
struct Outq {
    /// The socket; `None` once the member is gone (or, in unit tests, never attached).
    sink: Option<Arc<Conn>>,
    items: VecDeque<Queued>,
    /// Bytes of the front item already written.
    offset: usize,
    lines: usize,
    bytes: usize,
    gone: bool,
    /// The last write failed: the member's task finds out on its next flush.
    failed: bool,
    /// The gate of the member's room, and whether this member holds it closed.
    gate: Option<Arc<Gate>>,
    behind: bool,
}

impl Outq {
    fn queue(&mut self, data: &Bytes, lines: usize, now: Instant) {
        self.lines += lines;
        self.bytes += data.len();
        self.items.push_back(Queued {
            data: data.clone(),
            at: now,
            lines,
        });
    }

    fn pop(&mut self) {
        if let Some(front) = self.items.pop_front() {
            self.lines -= front.lines;
            self.bytes -= front.data.len();
        }
    }

    /// Drops the member: nothing more is written, its gate no longer waits for it.
    fn drop_all(&mut self) {
        self.gone = true;
        self.items = VecDeque::new();
        self.sink = None;
        self.lines = 0;
        self.bytes = 0;
        self.set_behind(false);
    }

    fn set_behind(&mut self, behind: bool) {
        if behind != self.behind {
            self.behind = behind;
            let gauge = &crate::metrics::chat().behind;
            if behind {
                gauge.inc();
            } else {
                gauge.dec();
            }
            if let Some(gate) = &self.gate {
                if behind {
                    gate.close_one()
                } else {
                    gate.open_one()
                }
            }
        }
    }

    /// Whether the oldest queued line has waited longer than `max_lag`.
    fn stalled(&self, max_lag: Duration, now: Instant) -> bool {
        self.items
            .front()
            .is_some_and(|f| now.saturating_duration_since(f.at) > max_lag)
    }
}

/// What a flush left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written.
    Empty,
    /// The socket took less than everything; wait until it is writable.
    Pending,
    /// The member was dropped (it fell too far behind) or closed.
    Gone,
}

impl Member {
    /// A member writing to `sink` (`None`: everything stays queued, for tests).
    pub(super) fn new(id: MemberId, limits: QueueLimits, sink: Option<Arc<Conn>>) -> Self {
        Member {
            id,
            out: Mutex::new(Outq {
                sink,
                ..Outq::default()
            }),
            wake: Notify::new(),
            limits: QueueLimits {
                high: limits.high.max(1),
                ..limits
            },
        }
    }

    /// Moves the member to the gate of the room it is now in (taking its "behind" along).
    pub(super) fn set_gate(&self, gate: Arc<Gate>) {
        let mut q = lock(&self.out);
        let behind = q.behind;
        q.set_behind(false);
        q.gate = Some(gate);
        if !q.gone {
            q.set_behind(behind);
        }
    }

    /// The gate of the member's room: its senders read only while it is open.
    pub fn gate(&self) -> Option<Arc<Gate>> {
        lock(&self.out).gate.clone()
    }

    /// When the oldest queued line will have waited too long, if any is queued: the member's
    /// task checks again then (see [`Member::flush`]).
    pub fn lag_deadline(&self) -> Option<Instant> {
        let q = lock(&self.out);
        q.items.front().map(|f| f.at + self.limits.max_lag)
    }

    /// The member this is.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// Sends shared buffers, each with the number of lines it holds (counted once by the
    /// caller, not here for every member), straight to the socket if nothing is queued ahead
    /// of them; false (and the member is marked gone) when the member has stopped draining or
    /// its queue would pass the byte cap. `now` is read once by the caller for all the members
    /// it delivers to.
    pub(super) fn push(&self, posts: &[(&Bytes, usize)], now: Instant) -> bool {
        let mut q = lock(&self.out);
        if q.gone || posts.is_empty() {
            return true;
        }
        if q.items.is_empty() && !q.failed {
            let mut written = match &q.sink {
                Some(sink) => {
                    let mut iov = [IoSlice::new(&[]); IOV_MAX];
                    let n = posts.len().min(IOV_MAX);
                    for (slot, (post, _)) in iov.iter_mut().zip(posts) {
                        *slot = IoSlice::new(post);
                    }
                    match sink.try_write_vectored(&iov[..n]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                        Err(_) => {
                            q.failed = true;
                            0
                        }
                    }
                }
                None => 0,
            };
            let mut rest = posts.iter();
            for &(post, lines) in rest.by_ref() {
                if written < post.len() {
                    q.queue(post, lines, now);
                    q.offset = written;
                    break;
                }
                written -= post.len();
            }
            if q.items.is_empty() {
                return true;
            }
            for &(post, lines) in rest {
                q.queue(post, lines, now);
            }
            let behind = q.lines > self.limits.high;
            q.set_behind(behind);
            drop(q);
            self.wake.notify_one();
            return true;
        }
        // An empty queue takes any one delivery (above), so a read's worth of lines larger
        // than the cap still gets through to a member that keeps up.
        let more: usize = posts.iter().map(|(p, _)| p.len()).sum();
        if q.stalled(self.limits.max_lag, now) || q.bytes + more > self.limits.max_bytes {
            crate::metrics::chat().drops.inc();
            q.drop_all();
            drop(q);
            self.wake.notify_one();
            return false;
        }
        for &(post, lines) in posts {
            q.queue(post, lines, now);
        }
        if q.lines > self.limits.high {
            q.set_behind(true);
        }
        true
    }

    /// Writes what is queued until the socket takes no more. An error is the socket's. A
    /// member whose oldest queued line has waited past `max_lag` is dropped here.
    pub fn flush(&self) -> io::Result<Flushed> {
        let mut q = lock(&self.out);
        let q = &mut *q;
        if q.gone {
            return Ok(Flushed::Gone);
        }
        if q.items.is_empty() {
            return Ok(Flushed::Empty);
        }
        if q.stalled(self.limits.max_lag, Instant::now()) {
            crate::metrics::chat().drops.inc();
            q.drop_all();
            return Ok(Flushed::Gone);
        }
        let Some(sink) = q.sink.clone() else {
            return Ok(Flushed::Pending);
        };
        while !q.items.is_empty() {
            let mut iov = [IoSlice::new(&[]); IOV_MAX];
            let mut n = 0;
            for (i, b) in q.items.iter().take(IOV_MAX).enumerate() {
                iov[i] = IoSlice::new(if i == 0 { &b.data[q.offset..] } else { &b.data });
                n += 1;
            }
            let written = sink.try_write_vectored(&iov[..n]);
            let mut written = match written {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if q.lines <= self.limits.high / 2 {
                        q.set_behind(false);
                    }
                    return Ok(Flushed::Pending);
                }
                Err(e) => return Err(e),
            };
            while let Some(front) = q.items.front() {
                let left = front.data.len() - q.offset;
                if written < left {
                    q.offset += written;
                    break;
                }
                written -= left;
                q.offset = 0;
                q.pop();
            }
        }
        q.set_behind(false);
        q.failed = false;
        if q.items.capacity() > 16 {
            // Do not keep a burst's worth of slots for a member that is now idle.
            q.items = VecDeque::new();
        }
        Ok(Flushed::Empty)
    }

    /// Stops all writing to the member and lets go of its socket.
    pub fn close(&self) {
        lock(&self.out).drop_all();
    }

    /// Resolves when something was queued or the member was dropped since the last call.
    pub async fn wait(&self) {
        self.wake.notified().await
    }

    /// Everything queued, for tests of members without a socket.
    #[cfg(test)]
    pub(super) fn drain(&self) -> Option<Vec<Bytes>> {
        let mut q = lock(&self.out);
        if q.gone {
            return None;
        }
        q.lines = 0;
        q.bytes = 0;
        q.offset = 0;
        q.set_behind(false);
        Some(
            std::mem::take(&mut q.items)
                .into_iter()
                .map(|i| i.data)
                .collect(),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole chat down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
