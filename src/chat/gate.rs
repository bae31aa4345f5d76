//! A room's gate: open while every member takes its lines, closed while some member's queue is
//! past its high-water mark and still draining. Sessions read from their clients only while
//! their room's gate is open, so a room moves at the pace of the members that read (TCP
//! backpressure on the senders), and nobody who reads loses a line to a flood.
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// How many members of a room are behind, and who waits for none to be.
#[derive(Debug, Default)]
pub struct Gate {
    behind: AtomicUsize,
    open: Notify,
}

impl Gate {
    /// Whether senders to the room may go on.
    pub fn is_open(&self) -> bool {
        self.behind.load(Ordering::Acquire) == 0
    }

    /// A member fell behind.
    pub fn close_one(&self) {
        self.behind.fetch_add(1, Ordering::AcqRel);
    }

    /// A member caught up (or left): the gate opens when it was the last one behind.
    pub fn open_one(&self) {
        if self.behind.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.open.notify_waiters();
        }
    }

    /// Resolves once the gate is open.
    pub async fn opened(&self) {
        loop {
            let notified = self.open.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_open() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_opens_when_the_last_member_catches_up() {
        let gate = std::sync::Arc::new(Gate::default());
        gate.close_one();
        gate.close_one();
        gate.open_one();
        assert!(!gate.is_open());
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.opened().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.open_one();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
