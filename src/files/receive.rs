//! Receiving one file: the network side reads frames and counts, a blocking writer thread
//! hashes, writes and checks each segment against the sender's hash as it arrives.
use std::io;

use bytes::Bytes;
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::names::RelName;
use super::partial::{NoSpace, Partial};
use super::protocol::{DATA, FileHeader, Msg};
use super::store::Root;
use super::store::writer::{Kept, Writer};
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
    /// Stopped before the end (a signal here, or `stop` from the sender): nothing at the
    /// final name, the verified part kept for a resume.
    Stopped {
        /// Verified bytes kept (0: nothing).
        kept: u64,
        /// Whether the sender asked (and was told what is kept).
        by_sender: bool,
    },
}

/// The refusal of a file whose name is taken by another of the same size.
pub fn exists_message(name: &str) -> String {
    format!(
        "{} already exists with other content; not replaced (use --overwrite to replace it)",
        super::names::escape(name)
    )
}

/// When a file offered as `header` may not replace what is at `name` beneath `root`: the
/// `have` answer if a regular file of the same size is there (hashed, so the sender can
/// tell whether it is the same), else `None` (the refusal stands). Blocking.
pub fn have(root: &Root, name: &RelName, header: &FileHeader) -> Option<Msg> {
    let file = root.open_file(name).ok()?;
    if file.metadata().ok()?.len() != header.size {
        return None;
    }
    let blake3 = tree::file_hash(&file).ok()?;
    Some(Msg::Have { blake3 })
}

/// After a `have`: the sender's word on whether the files are the same.
pub async fn same<S: AsyncRead + AsyncWrite + Unpin>(t: &mut Link<S>) -> Result<bool, FrameError> {
    match t.recv_control::<Msg>().await? {
        Msg::Same { same } => Ok(same),
        other => Err(FrameError::Unexpected(format!(
            "expected same after have, got {}",
            kind(&other)
        ))),
    }
}

/// A message's type, as the wire names it (for errors; never its contents).
pub fn kind(msg: &Msg) -> String {
    serde_json::to_value(msg)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default()
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
    stop: &CancellationToken,
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
    super::progress::start_at(bar, offset);

    let (tx, rx) = mpsc::channel::<Item>(8);
    let writer = tokio::task::spawn_blocking(move || write(partial, rx));
    let mut tx = Some(tx);
    let (mut got, mut segs) = (0u64, 0u64);
    let (mut broken, mut stopped) = (None, None);
    while got < size - offset || segs < want_segs {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            frame = t.recv() => Some(frame),
        };
        let Some(next) = next else {
            stopped = Some(false);
            break;
        };
        let item = match next {
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
                Ok(Msg::Stop) => {
                    stopped = Some(true);
                    break;
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
    if let Some(by_sender) = stopped {
        // The writer sees the channel close early and keeps what it verified.
        let kept = match writer.await {
            Ok(Err(e)) => e
                .get_ref()
                .and_then(|i| i.downcast_ref::<Kept>())
                .map_or(0, |k| k.0),
            _ => 0,
        };
        if by_sender {
            t.send_control(&Msg::Stopped { kept }).await?;
        }
        return Ok(Outcome::Stopped { kept, by_sender });
    }
    let (outcome, reply) = match writer.await {
        Ok(Ok(blake3)) => (
            Outcome::Verified {
                blake3: blake3.clone(),
                received: got,
            },
            Msg::Verified {
                blake3,
                received: got,
            },
        ),
        Ok(Err(e)) => match NoSpace::of(&e) {
            Some(full) => (
                Outcome::NoSpace(full.clone()),
                Msg::NoSpace {
                    detail: full.detail.clone(),
                    kept: full.kept,
                },
            ),
            None => failed(e.to_string()),
        },
        Err(e) => failed(format!("writer failed: {e}")),
    };
    t.send_control(&reply).await?;
    Ok(outcome)
}

/// A rejected file's outcome and the answer that says so.
fn failed(message: String) -> (Outcome, Msg) {
    (Outcome::Failed(message.clone()), Msg::Failed { message })
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
