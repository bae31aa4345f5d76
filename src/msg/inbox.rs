//! Which offered attachments `msg listen --accept-files DIR` fetches, from whom, and how much.
//!
//! Anyone on the LAN can send a message offering files, from any source address (UDP can be
//! forged), of any declared size. So nothing is fetched unless the user accepts it (`accept N`
//! on standard input) or the sender is one the user named (`--accept-from`: an address, a
//! contact, or every contact), and then only from that sender's own address. Whatever is
//! fetched stays within caps: files per message, bytes per file, bytes in all, fetches at once,
//! and free space left on the disk.
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::Semaphore;

use super::attach::Attachment;
use super::node::Message;

/// Offers waiting for `accept N` at most; the oldest is forgotten first.
const MAX_PENDING: usize = 256;
/// An offer not accepted within this long is forgotten (senders keep files on offer for
/// minutes: `msg send --wait` defaults to 300 s).
const OFFER_TTL: Duration = Duration::from_secs(600);

/// The limits on what is fetched.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Largest file fetched, as declared by the sender (and no byte more is read).
    pub max_file_size: u64,
    /// Files taken from one message; the rest of its list is ignored.
    pub max_files: usize,
    /// Bytes fetched in all while the listener runs.
    pub max_total: u64,
    /// Fetches running at once; more wait their turn.
    pub max_fetches: usize,
    /// Bytes to leave free on the directory's filesystem.
    pub min_free: u64,
}

/// One offered file, numbered for `accept N`.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Its number.
    pub number: u64,
    /// The message that offered it.
    pub message: Message,
    /// The file.
    pub file: Attachment,
    at: Instant,
}

/// Bytes counted against the caps for one fetch; given back by [`Inbox::release`] when the
/// fetch fails.
#[derive(Debug)]
pub struct Reservation(u64);

/// The offers, the caps and the senders fetched from without asking.
#[derive(Debug)]
pub struct Inbox {
    dir: PathBuf,
    caps: Caps,
    trusted: Vec<SocketAddr>,
    state: Mutex<State>,
    fetches: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct State {
    pending: VecDeque<Offer>,
    next: u64,
    /// Bytes fetched and being fetched.
    total: u64,
    /// Bytes being fetched (not on the disk yet, so not in its free space).
    in_flight: u64,
}

impl Inbox {
    /// An inbox writing into `dir`, fetching without asking from `trusted`.
    pub fn new(dir: PathBuf, caps: Caps, trusted: Vec<SocketAddr>) -> Inbox {
        Inbox {
            dir,
            fetches: Arc::new(Semaphore::new(caps.max_fetches.max(1))),
            caps,
            trusted,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers the first [`Caps::max_files`] regular files `m` offers and keeps them for
    /// `accept N`; returns the offers and how many files were left out.
    pub fn offer(&self, m: &Message) -> (Vec<Offer>, usize) {
        let now = Instant::now();
        let mut state = self.lock();
        state
            .pending
            .retain(|o| now.duration_since(o.at) < OFFER_TTL);
        let offers: Vec<Offer> = m
            .files
            .iter()
            .take(self.caps.max_files)
            .map(|file| {
                state.next += 1;
                Offer {
                    number: state.next,
                    message: m.clone(),
                    file: file.clone(),
                    at: now,
                }
            })
            .collect();
        for o in &offers {
            if state.pending.len() >= MAX_PENDING {
                state.pending.pop_front();
            }
            state.pending.push_back(o.clone());
        }
        (offers, m.files.len().saturating_sub(self.caps.max_files))
    }

    /// Where to fetch `m`'s files from without asking: its sender's address, when the user
    /// named that address (`--accept-from`).
    pub fn trusted_source(&self, m: &Message) -> Option<SocketAddr> {
        self.trusted.contains(&m.addr).then_some(m.addr)
    }

    /// Takes offer `number` (or every waiting offer, for `None`) off the waiting list.
    pub fn take(&self, number: Option<u64>) -> Vec<Offer> {
        let now = Instant::now();
        let mut state = self.lock();
        state
            .pending
            .retain(|o| now.duration_since(o.at) < OFFER_TTL);
        match number {
            None => state.pending.drain(..).collect(),
            Some(n) => {
                let at = state.pending.iter().position(|o| o.number == n);
                at.and_then(|i| state.pending.remove(i))
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Counts `file` against the caps (size, total, free space), or says which it passes.
    pub fn reserve(&self, file: &Attachment) -> Result<Reservation> {
        let caps = self.caps;
        if file.size > caps.max_file_size {
            bail!(
                "declared {} bytes, over --max-file-size {}",
                file.size,
                caps.max_file_size
            );
        }
        let free = crate::sys::free_space(&self.dir)?;
        let mut state = self.lock();
        if state.total.saturating_add(file.size) > caps.max_total {
            bail!(
                "{} bytes more would pass --max-total {} ({} fetched or on the way)",
                file.size,
                caps.max_total,
                state.total
            );
        }
        let need = file
            .size
            .saturating_add(caps.min_free)
            .saturating_add(state.in_flight);
        if free < need {
            bail!(
                "not enough free space in {}: {free} bytes free, {} bytes to keep free (--min-free)",
                self.dir.display(),
                caps.min_free
            );
        }
        state.total += file.size;
        state.in_flight += file.size;
        Ok(Reservation(file.size))
    }

    /// The fetch is over: its bytes are on the disk (`kept`) or were not fetched at all.
    pub fn release(&self, r: Reservation, kept: bool) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(r.0);
        if !kept {
            state.total = state.total.saturating_sub(r.0);
        }
    }

    /// Waits for a turn among [`Caps::max_fetches`].
    pub async fn turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.fetches
            .clone()
            .acquire_owned()
            .await
            .expect("the fetch semaphore is never closed")
    }

    /// The directory files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::members::Members;
    use crate::msg::packet::Packet;

    fn message(files: usize, size: u64) -> Message {
        let addr: SocketAddr = "10.0.0.2:2425".parse().unwrap();
        Message {
            from: Members::new(4)
                .message(addr, &Packet::parse(b"1:1:u:h:32:x").unwrap())
                .0,
            addr,
            number: 1,
            text: String::new(),
            files: (0..files as u64)
                .map(|id| Attachment {
                    id,
                    name: format!("f{id}"),
                    size,
                    attr: 1,
                })
                .collect(),
            broadcast: false,
        }
    }

    fn caps() -> Caps {
        Caps {
            max_file_size: 1000,
            max_files: 5,
            max_total: 2500,
            max_fetches: 2,
            min_free: 0,
        }
    }

    #[test]
    fn offers_are_capped_per_message_and_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().into(), caps(), Vec::new());
        let (offers, ignored) = inbox.offer(&message(100, 10));
        assert_eq!((offers.len(), ignored), (5, 95));
        assert!(inbox.trusted_source(&offers[0].message).is_none());
        assert_eq!(inbox.take(Some(3)).len(), 1);
        assert!(inbox.take(Some(3)).is_empty());
        assert_eq!(inbox.take(None).len(), 4);
    }

    #[test]
    fn sizes_and_totals_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().into(), caps(), Vec::new());
        let file = |size| message(1, size).files[0].clone();
        assert!(inbox.reserve(&file(u64::MAX)).is_err());
        let a = inbox.reserve(&file(1000)).unwrap();
        let b = inbox.reserve(&file(1000)).unwrap();
        assert!(inbox.reserve(&file(1000)).is_err());
        inbox.release(b, false);
        inbox.release(a, true);
        assert!(inbox.reserve(&file(1000)).is_ok());
        assert!(inbox.reserve(&file(501)).is_err());
        let picky = Inbox::new(
            dir.path().into(),
            Caps {
                min_free: u64::MAX / 2,
                ..caps()
            },
            Vec::new(),
        );
        let e = picky.reserve(&file(1)).unwrap_err().to_string();
        assert!(e.contains("free space"), "{e}");
    }
}
