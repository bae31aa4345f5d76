//! Receiving one file: the network side reads frames and counts, a blocking writer thread
//! hashes, writes and checks each segment against the sender's hash as it arrives.
use std::io;

use bytes::Bytes;
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::link::Link;
use super::partial::{NoSpace, Partial};
use super::protocol::{DATA, Msg};
use super::store::writer::Writer;
use super::tree::{self, SEGMENT, TreeHasher};
use crate::framing::{Frame, FrameError};

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

/// The writer thread: feeds the [`Writer`] in order, each segment held once the sender's
/// hash of it matches, and commits or keeps what is held. Returns the hex BLAKE3 of the
/// committed file.
fn write(p: Partial, mut rx: mpsc::Receiver<Item>) -> io::Result<String> {
    let mut w = Writer::start(p)?;
    let res: io::Result<()> = (|| {
        while !w.complete() {
            // The connection broke: the writer keeps what is held so a re-run can resume.
            let Some(item) = rx.blocking_recv() else {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            };
            match item {
                Item::Data(bytes) => w.write(&bytes)?,
                Item::Segment(index, hash) => w.check_segment(index, hash)?,
            }
        }
        Ok(())
    })();
    w.end(res)
}
