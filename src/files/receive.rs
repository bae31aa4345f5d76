//! Receiving one file: the network side reads frames and counts, a blocking writer thread
//! hashes, writes and checks each segment against the sender's hash as it arrives.
use std::io;

use bytes::Bytes;
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::link::Link;
use super::partial::{NoSpace, Partial};
use super::progress::human;
use super::protocol::{DATA, Msg};
use super::tree::{self, SEGMENT, TreeHasher};
use crate::framing::{Frame, FrameError};

/// Verified segments kept in memory before the partial file is synced and they are recorded:
/// the most a crash costs on resume (64 MiB).
const CHECKPOINT_EVERY: usize = 16;
/// Written bytes are handed to the disk in windows of this size as they arrive, so the
/// final fsync of a large file is short.
const WRITEBACK: u64 = 8 << 20;

/// How a file reception ended.
#[derive(Debug)]
pub enum Outcome {
    /// In place under its final name.
    Verified {
        /// BLAKE3 of the whole file, hex.
        blake3: String,
        /// File bytes received this time.
        received: u64,
    },
    /// Rejected (hash, size, disk): nothing at the final name, nothing kept.
    Failed(String),
    /// The disk filled: nothing at the final name, the verified part kept for a resume
    /// unless the sender asked to start over.
    NoSpace(NoSpace),
}

enum Item {
    Data(Bytes),
    Segment(u64, [u8; 32]),
}

/// Receives the file `partial` was opened for: sends `accept`, takes the bytes, verifies,
/// commits, and tells the sender. An error means the connection broke (the partial file and
/// its state stay for a later resume).
pub async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    partial: Partial,
    bar: &ProgressBar,
) -> Result<Outcome, FrameError> {
    let size = partial.header.size;
    let offset = partial.offset;
    let first_seg = if size <= SEGMENT {
        0
    } else {
        offset.div_ceil(SEGMENT)
    };
    let want_segs = TreeHasher::segments(size) - first_seg;
    t.send_control(&Msg::Accept { offset }).await?;
    bar.set_position(offset);

    let (tx, rx) = mpsc::channel::<Item>(8);
    let writer = tokio::task::spawn_blocking(move || write(partial, rx));
    let mut tx = Some(tx);
    let (mut got, mut segs) = (0u64, 0u64);
    let mut broken = None;
    while got < size - offset || segs < want_segs {
        let item = match t.recv().await {
            Ok(Frame::Data {
                channel: DATA,
                bytes,
            }) => {
                got += bytes.len() as u64;
                if got > size - offset {
                    broken = Some(FrameError::Unexpected("more bytes than declared".into()));
                    break;
                }
                bar.inc(bytes.len() as u64);
                Item::Data(bytes)
            }
            Ok(Frame::Control(json)) => match serde_json::from_slice(&json) {
                Ok(Msg::Segment { index, hash }) => {
                    segs += 1;
                    match tree::unhex(&hash) {
                        Some(h) => Item::Segment(index, h),
                        None => {
                            broken = Some(FrameError::Unexpected("bad segment hash".into()));
                            break;
                        }
                    }
                }
                _ => {
                    broken = Some(FrameError::Unexpected(
                        "unexpected message in a file".into(),
                    ));
                    break;
                }
            },
            Ok(Frame::Data { channel, .. }) => {
                broken = Some(FrameError::Unexpected(format!("data on channel {channel}")));
                break;
            }
            Err(e) => {
                broken = Some(e);
                break;
            }
        };
        // Once the writer has failed, the rest is drained so the next file can follow.
        if let Some(sender) = &tx
            && sender.send(item).await.is_err()
        {
            tx = None;
        }
    }
    if let Some(e) = broken {
        // The writer sees the channel close early and keeps what it verified for a resume.
        drop(tx);
        let _ = writer.await;
        return Err(e);
    }
    drop(tx);
    let outcome = match writer.await {
        Ok(Ok(blake3)) => Outcome::Verified {
            blake3,
            received: got,
        },
        Ok(Err(e)) => match NoSpace::of(&e) {
            Some(full) => Outcome::NoSpace(full.clone()),
            None => Outcome::Failed(e.to_string()),
        },
        Err(e) => Outcome::Failed(format!("writer failed: {e}")),
    };
    let reply = match &outcome {
        Outcome::Verified { blake3, received } => Msg::Verified {
            blake3: blake3.clone(),
            received: *received,
        },
        Outcome::Failed(message) => Msg::Failed {
            message: message.clone(),
        },
        Outcome::NoSpace(full) => Msg::NoSpace {
            detail: full.detail.clone(),
            kept: full.kept,
        },
    };
    t.send_control(&reply).await?;
    Ok(outcome)
}

/// The writer thread: writes, hashes, checks segments, checkpoints, and commits or discards.
/// Returns the hex BLAKE3 of the committed file.
fn write(mut p: Partial, mut rx: mpsc::Receiver<Item>) -> io::Result<String> {
    use std::io::Write;
    let size = p.header.size;
    let mut local = std::collections::VecDeque::new();
    let mut done = Vec::new();
    let mut unsynced: Vec<[u8; 32]> = Vec::new();
    let mut next = p.hasher.chaining_values().len() as u64;
    let total = TreeHasher::segments(size);
    let journal = p.journal()?;
    let mut written_to = p.offset;
    let res: io::Result<()> = (|| {
        while p.hasher.position() < size || next < total {
            let Some(item) = rx.blocking_recv() else {
                // The connection broke: keep what is verified so a re-run can resume.
                journal.record(std::mem::take(&mut unsynced))?;
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            };
            match item {
                Item::Data(bytes) => {
                    p.file.write_all(&bytes)?;
                    let end = written_to + bytes.len() as u64;
                    if end / WRITEBACK != written_to / WRITEBACK || end == size {
                        let from = written_to - written_to % WRITEBACK;
                        crate::sys::start_writeback(&p.file, from, end - from);
                    }
                    written_to = end;
                    p.hasher.update(&bytes, &mut done);
                    local.extend(done.drain(..));
                }
                Item::Segment(index, hash) => {
                    let mine = if size <= SEGMENT {
                        p.hasher.single_root()
                    } else {
                        local.pop_front().map(|(_, cv)| cv)
                    };
                    if index != next || mine != Some(hash) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{}: BLAKE3 mismatch in bytes {}..{}: corrupted in transit; discarded",
                                p.display,
                                index * SEGMENT,
                                ((index + 1) * SEGMENT).min(size)
                            ),
                        ));
                    }
                    next += 1;
                    if size > SEGMENT {
                        unsynced.push(hash);
                        if unsynced.len() >= CHECKPOINT_EVERY {
                            journal.record(std::mem::take(&mut unsynced))?;
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    // Durable progress first: on success it is moot, on interruption or a full disk it is
    // what resumes.
    if matches!(&res, Err(e) if NoSpace::is_full(e)) {
        let _ = journal.record(std::mem::take(&mut unsynced));
    }
    let closed = journal.close();
    let res = match (res, closed) {
        // The journal's own fsync or append may be what found the disk full.
        (Err(e), Err(c)) if NoSpace::is_full(&c) && !NoSpace::is_full(&e) => Err(c),
        (r, c) => r.and(c),
    };
    match res {
        Ok(()) => {
            let hash = p.hasher.root().map(|h| tree::hex(h.as_bytes()));
            let hash = hash.ok_or_else(|| io::Error::other("incomplete hash"))?;
            let display = p.display.clone();
            // On failure, commit removes what it held.
            p.commit().map_err(|e| match NoSpace::is_full(&e) {
                true => NoSpace {
                    detail: "the disk filled while the file was put in place".into(),
                    kept: 0,
                }
                .into_error(),
                false => io::Error::new(e.kind(), format!("{display}: {e}")),
            })?;
            Ok(hash)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            // Kept for a resume, unless the sender asked to start over and keep nothing.
            if p.fresh {
                p.discard();
            }
            Err(e)
        }
        Err(e) if NoSpace::is_full(&e) => {
            let detail = format!(
                "the disk filled after {} of {}",
                human(written_to),
                human(size)
            );
            let kept = p.keep_verified();
            Err(NoSpace { detail, kept }.into_error())
        }
        Err(e) => {
            let display = p.display.clone();
            p.discard();
            if e.kind() == io::ErrorKind::InvalidData {
                Err(e)
            } else {
                Err(io::Error::new(
                    e.kind(),
                    format!("{display}: {e}; discarded"),
                ))
            }
        }
    }
}
