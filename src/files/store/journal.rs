//! The resume journal of a file being received: a thread that makes the written bytes
//! durable (fdatasync), then appends the chaining values of the segments they complete to the
//! state file, while the writer goes on writing (see [`partial`](super::partial)).
use std::fs::File;
use std::io::{self, Write};

/// Records verified segments once their bytes are on disk (see [`Partial::journal`](super::partial::Partial::journal)).
pub struct Journal {
    tx: Option<std::sync::mpsc::SyncSender<Vec<[u8; 32]>>>,
    handle: std::thread::JoinHandle<io::Result<()>>,
}

impl Journal {
    /// Starts the thread for the partial file `data` and its state file `state`.
    pub(super) fn start(data: File, mut state: File) -> io::Result<Journal> {
        // Two batches in flight at most: a disk slower than the network slows the sender.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<[u8; 32]>>(2);
        let handle = std::thread::Builder::new()
            .name("taojie-journal".into())
            .spawn(move || -> io::Result<()> {
                for batch in rx {
                    data.sync_data()?;
                    for cv in &batch {
                        state.write_all(cv)?;
                    }
                }
                Ok(())
            })?;
        Ok(Journal {
            tx: Some(tx),
            handle,
        })
    }

    /// Queues segments whose bytes were all written.
    pub fn record(&self, cvs: Vec<[u8; 32]>) -> io::Result<()> {
        if cvs.is_empty() {
            return Ok(());
        }
        match &self.tx {
            Some(tx) => tx
                .send(cvs)
                .map_err(|_| io::Error::other("the journal thread stopped")),
            None => Ok(()),
        }
    }

    /// Waits until everything queued is durable and recorded.
    pub fn close(mut self) -> io::Result<()> {
        drop(self.tx.take());
        self.handle
            .join()
            .map_err(|_| io::Error::other("the journal thread panicked"))?
    }
}
