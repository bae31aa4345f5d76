//! One member's outbound queue: shared `Bytes` posts waiting for the member's task to write
//! them, bounded in lines, with the wake-up that tells the task there is work or that the
//! member has been dropped.
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

/// One member's outbound side, shared by the broker (which queues) and the member's task
/// (which writes). Bounded in lines: a member that falls `limit` lines behind is dropped.
#[derive(Debug)]
pub struct Member {
    out: Mutex<Outq>,
    wake: Notify,
    limit: usize,
}

#[derive(Debug, Default)]
struct Outq {
    items: VecDeque<Bytes>,
    lines: usize,
    gone: bool,
}

impl Member {
    pub(super) fn new(limit: usize) -> Self {
        Member {
            out: Mutex::new(Outq::default()),
            wake: Notify::new(),
            limit: limit.max(1),
        }
    }

    /// Queues `count` lines; false (and the member is marked gone) when they do not fit.
    pub(super) fn push(&self, lines: &Bytes, count: usize) -> bool {
        let mut q = lock(&self.out);
        if q.gone {
            return true;
        }
        // An empty queue takes any one post, so a read's worth of lines larger than the
        // limit still gets through to a member that keeps up.
        if q.lines > 0 && q.lines + count > self.limit {
            q.gone = true;
            q.items = VecDeque::new();
            drop(q);
            self.wake.notify_one();
            return false;
        }
        q.items.push_back(lines.clone());
        q.lines += count;
        let first = q.items.len() == 1;
        drop(q);
        if first {
            self.wake.notify_one();
        }
        true
    }

    /// Moves everything queued into `into` once `into` is empty (so a member that does not
    /// read holds at most two queues' worth); false once the member has been dropped.
    pub fn take(&self, into: &mut VecDeque<Bytes>) -> bool {
        let mut q = lock(&self.out);
        if q.gone {
            return false;
        }
        if into.is_empty() {
            std::mem::swap(into, &mut q.items);
            q.lines = 0;
        }
        true
    }

    /// Resolves when something was queued or the member was dropped since the last call.
    pub async fn wait(&self) {
        self.wake.notified().await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole chat down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
