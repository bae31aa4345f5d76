//! The disk side of a file being received: one thread that writes the received bytes back to
//! disk while the transfer streams, and keeps the resume journal (see
//! [`partial`](super::partial)), while the writer goes on writing and hashing.
//!
//! Write-back: for every finished window of [`WINDOW`] bytes the writer reports, the thread
//! starts its writeback at once (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), then waits for the
//! windows before the previous one to be on disk and drops them from the page cache
//! ([`settle_written`](crate::sys::settle_written)). So the disk works from the first megabytes
//! on, the final fsync finds at most a couple of windows to write, and a large upload holds a
//! few tens of megabytes of page cache instead of its whole size (which on a busy machine the
//! kernel had to reclaim from everyone's cache, in the writer's time).
//!
//! Journal: every [`CHECKPOINT_EVERY`](super::writer::CHECKPOINT_EVERY) segments, the bytes are
//! made durable (fdatasync, little left to write by then) and the chaining values of the
//! segments they complete appended to the state file.
use std::fs::File;
use std::io::{self, Write};

/// Bytes the writer hands to the disk at a time (see the module's doc).
pub const WINDOW: u64 = 8 << 20;

/// Jobs queued before the writer waits: how far the network may run ahead of the disk
/// (about this many windows, plus the one written back and the one waited for).
const QUEUE: usize = 4;

enum Job {
    /// Bytes `from..to` were written: start their writeback, settle the older ones.
    Written { from: u64, to: u64 },
    /// Make everything written durable, then record these segments.
    Record(Vec<[u8; 32]>),
}

/// The disk thread of one file (see the module's doc and
/// [`Partial::journal`](super::partial::Partial::journal)).
pub struct Journal {
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

impl Journal {
    /// Starts the thread for the partial file `data` and its state file `state`.
    pub(super) fn start(data: File, mut state: File) -> io::Result<Journal> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("taojie-journal".into())
            .spawn(move || -> io::Result<()> {
                // Bytes below this are on disk and out of the page cache.
                let mut settled = 0u64;
                for job in rx {
                    match job {
                        Job::Written { from, to } => {
                            // A rewind (a chunk that failed its check) writes again below.
                            settled = settled.min(from);
                            crate::sys::start_writeback(&data, from, to - from);
                            // One window in flight behind the newest; older ones settle.
                            let old = from.saturating_sub(WINDOW) / WINDOW * WINDOW;
                            if old > settled {
                                crate::sys::settle_written(&data, settled, old - settled)?;
                                settled = old;
                            }
                        }
                        Job::Record(batch) => {
                            data.sync_data()?;
                            for cv in &batch {
                                state.write_all(cv)?;
                            }
                        }
                    }
                }
                Ok(())
            })?;
        Ok(Journal {
            tx: Some(tx),
            handle,
        })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        match &self.tx {
            Some(tx) => tx
                .send(job)
                .map_err(|_| io::Error::other("the journal thread stopped")),
            None => Ok(()),
        }
    }

    /// Reports bytes `from..to` written (a finished window, or the file's end): their
    /// writeback starts, older windows are waited for and leave the page cache.
    pub fn written(&self, from: u64, to: u64) -> io::Result<()> {
        if to <= from {
            return Ok(());
        }
        self.send(Job::Written { from, to })
    }

    /// Queues segments whose bytes were all written.
    pub fn record(&self, cvs: Vec<[u8; 32]>) -> io::Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        self.send(Job::Record(cvs))
    }

    /// Waits until everything queued is durable and recorded.
    pub fn close(mut self) -> io::Result<()> {
        drop(self.tx.take());
        self.handle
            .join()
            .map_err(|_| io::Error::other("the journal thread panicked"))?
    }
}
