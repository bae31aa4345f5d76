//! One member's outbound side: the socket it is written to and the bounded queue of shared
//! `Bytes` posts the socket has not taken yet.
//!
//! Whoever delivers a post writes it straight to the member's socket when nothing is queued
//! ahead of it, so a member that keeps up costs one `writev` per post and no task wake-up.
//! Only what the socket does not take is queued; the member's own task then waits for the
//! socket to become writable and flushes. Both write under the member's lock, so lines keep
//! their order.
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use super::post::MemberId;
use crate::server::Conn;

/// Buffers handed to one vectored write.
const IOV_MAX: usize = 64;

/// One member's outbound side, shared by whoever delivers posts and by the member's task.
/// Bounded in lines: a member that falls `limit` lines behind is dropped.
#[derive(Debug)]
pub struct Member {
    id: MemberId,
    out: Mutex<Outq>,
    wake: Notify,
    limit: usize,
}

#[derive(Debug, Default)]
struct Outq {
    /// The socket; `None` once the member is gone (or, in unit tests, never attached).
    sink: Option<Arc<Conn>>,
    items: VecDeque<Bytes>,
    /// Bytes of the front item already written.
    offset: usize,
    lines: usize,
    gone: bool,
    /// The last write failed: the member's task finds out on its next flush.
    failed: bool,
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
    pub(super) fn new(id: MemberId, limit: usize, sink: Option<Arc<Conn>>) -> Self {
        Member {
            id,
            out: Mutex::new(Outq {
                sink,
                ..Outq::default()
            }),
            wake: Notify::new(),
            limit: limit.max(1),
        }
    }

    /// The member this is.
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// Sends `count` lines (in one or more shared buffers), straight to the socket if nothing
    /// is queued ahead of them; false (and the member is marked gone) when they do not fit in
    /// the queue.
    pub(super) fn push(&self, posts: &[&Bytes], count: usize) -> bool {
        let mut q = lock(&self.out);
        if q.gone || posts.is_empty() {
            return true;
        }
        if q.items.is_empty() && !q.failed {
            let mut written = match &q.sink {
                Some(sink) => {
                    let mut iov = [IoSlice::new(&[]); IOV_MAX];
                    let n = posts.len().min(IOV_MAX);
                    for (slot, post) in iov.iter_mut().zip(posts) {
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
            for post in rest.by_ref() {
                if written < post.len() {
                    q.items.push_back((*post).clone());
                    q.offset = written;
                    break;
                }
                written -= post.len();
            }
            if q.items.is_empty() {
                return true;
            }
            q.items.extend(rest.map(|&p| p.clone()));
            q.lines = count;
            drop(q);
            self.wake.notify_one();
            return true;
        }
        // An empty queue takes any one delivery (above), so a read's worth of lines larger
        // than the limit still gets through to a member that keeps up.
        if q.lines + count > self.limit {
            q.gone = true;
            q.items = VecDeque::new();
            q.sink = None;
            drop(q);
            self.wake.notify_one();
            return false;
        }
        q.items.extend(posts.iter().map(|&p| p.clone()));
        q.lines += count;
        true
    }

    /// Writes what is queued until the socket takes no more. An error is the socket's.
    pub fn flush(&self) -> io::Result<Flushed> {
        let mut q = lock(&self.out);
        let q = &mut *q;
        if q.gone {
            return Ok(Flushed::Gone);
        }
        if q.items.is_empty() {
            return Ok(Flushed::Empty);
        }
        let Some(sink) = &q.sink else {
            return Ok(Flushed::Pending);
        };
        while !q.items.is_empty() {
            let mut iov = [IoSlice::new(&[]); IOV_MAX];
            let mut n = 0;
            for (i, b) in q.items.iter().take(IOV_MAX).enumerate() {
                iov[i] = IoSlice::new(if i == 0 { &b[q.offset..] } else { b });
                n += 1;
            }
            let mut written = match sink.try_write_vectored(&iov[..n]) {
                Ok(w) => w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Pending),
                Err(e) => return Err(e),
            };
            while let Some(front) = q.items.front() {
                let left = front.len() - q.offset;
                if written < left {
                    q.offset += written;
                    break;
                }
                written -= left;
                q.offset = 0;
                q.items.pop_front();
            }
        }
        q.lines = 0;
        q.failed = false;
        if q.items.capacity() > 16 {
            // Do not keep a burst's worth of slots for a member that is now idle.
            q.items = VecDeque::new();
        }
        Ok(Flushed::Empty)
    }

    /// Stops all writing to the member and lets go of its socket.
    pub fn close(&self) {
        let mut q = lock(&self.out);
        q.gone = true;
        q.sink = None;
        q.items = VecDeque::new();
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
        q.offset = 0;
        Some(std::mem::take(&mut q.items).into())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole chat down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
