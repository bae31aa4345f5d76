//! Sending one file: a blocking reader thread reads and hashes ahead (a few chunks at most),
//! the network side frames what it is given. The file is sent from the descriptor its header
//! was made from, never opened again by name.
use std::fs::File;
use std::io::{self, Seek, SeekFrom};

use anyhow::{Result, anyhow, bail};
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::{self, Link};
use super::partial::NoSpace;
use super::protocol::{DATA, FileHeader, Msg};
use super::tree::{self, SEGMENT, TreeHasher};
use crate::framing::native::MAX_DATA;
use crate::framing::native::kind_of;
use crate::secure::Records;

/// How a file offer ended.
#[derive(Debug)]
pub enum Sent {
    /// The receiver verified it and put it in place.
    Verified {
        /// BLAKE3 of the whole file, hex, as the receiver computed it.
        blake3: String,
        /// File bytes sent this time (less than the size after a resume).
        sent: u64,
    },
    /// The receiver already has the same file: nothing was sent.
    UpToDate {
        /// BLAKE3 of the file, hex, the same on both sides.
        blake3: String,
    },
    /// The receiver did not take it (exists, no space, refused name).
    Refused(String),
    /// The receiver discarded it (hash or disk trouble).
    Failed(String),
    /// The receiver's disk cannot hold it, before or while the bytes came.
    NoSpace(NoSpace),
    /// Stopped on our side before the end: what the receiver said it keeps, if it answered
    /// (`None`: it had not accepted yet, or did not answer in time).
    Stopped(Option<u64>),
}

/// How long a sender that stopped waits for the receiver to say what it keeps.
const STOPPED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

enum Item {
    Data(Records),
    Segment(u64, [u8; 32]),
}

/// After the caller has offered `header` (made by [`header_for`] from `file`): waits for the
/// receiver's answer, streams `file` from the offset it asks for, and returns its verdict. An
/// error means the connection is unusable.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    file: File,
    header: &FileHeader,
    bar: &ProgressBar,
    stop: &CancellationToken,
) -> Result<Sent> {
    let answer = tokio::select! {
        biased;
        // Nothing accepted, nothing to keep: the connection is dropped.
        () = stop.cancelled() => return Ok(Sent::Stopped(None)),
        answer = t.recv_control::<Msg>() => answer?,
    };
    let offset = match answer {
        Msg::Accept { offset } if TreeHasher::valid_offset(header.size, offset) => offset,
        Msg::Accept { offset } => bail!("protocol error: peer asked to resume at {offset}"),
        Msg::Refuse { message } => return Ok(Sent::Refused(message)),
        Msg::Have { blake3 } => return compare(t, file, header, blake3).await,
        Msg::NoSpace { detail, kept } => return Ok(Sent::NoSpace(NoSpace { detail, kept })),
        Msg::Error { message } => bail!("{}", super::names::escape(&message)),
        other => bail!("protocol error: unexpected {}", kind_of(&other)),
    };
    super::progress::start_at(bar, offset);
    let (tx, mut rx) = mpsc::channel::<Item>(4);
    // Sent frames go back to the reader to be filled again.
    let (spare_tx, spare) = std::sync::mpsc::channel::<Records>();
    let size = header.size;
    let reader = tokio::task::spawn_blocking(move || read(file, size, offset, tx, spare));
    let mut sent = 0u64;
    loop {
        // Only the wait for the next piece gives way to a stop: a frame is sent whole.
        let item = tokio::select! {
            biased;
            () = stop.cancelled() => {
                drop(rx);
                let _ = reader.await;
                return stopped(t, sent).await;
            }
            item = rx.recv() => item,
        };
        let Some(item) = item else { break };
        match item {
            Item::Data(frame) => {
                let n = (frame.len() - link::DATA_HEADER) as u64;
                let _ = spare_tx.send(t.send_prebuilt(frame).await?);
                sent += n;
                bar.inc(n);
            }
            Item::Segment(index, cv) => {
                let hash = tree::hex(&cv);
                t.send_control(&Msg::Segment { index, hash }).await?;
            }
        }
    }
    reader
        .await
        .map_err(|e| anyhow!("reader failed: {e}"))?
        .map_err(|e| anyhow!("{}: {e}", super::names::escape(&header.name)))?;
    Ok(match t.recv_control::<Msg>().await? {
        Msg::Verified { blake3, .. } => Sent::Verified { blake3, sent },
        Msg::Failed { message } => Sent::Failed(message),
        Msg::NoSpace { detail, kept } => Sent::NoSpace(NoSpace { detail, kept }),
        other => bail!("protocol error: unexpected {}", kind_of(&other)),
    })
}

/// Tells the receiver to stop and keep what it verified (`sent` bytes went this time);
/// returns what it says it keeps.
async fn stopped<S: AsyncRead + AsyncWrite + Unpin>(t: &mut Link<S>, sent: u64) -> Result<Sent> {
    t.send_control(&Msg::Stop).await?;
    let answer = match tokio::time::timeout(STOPPED_WAIT, t.recv_control::<Msg>()).await {
        Err(_) => return Ok(Sent::Stopped(None)),
        Ok(answer) => answer?,
    };
    Ok(match answer {
        Msg::Stopped { kept } => Sent::Stopped(Some(kept)),
        // It had all it needed before the stop came.
        Msg::Verified { blake3, .. } => Sent::Verified { blake3, sent },
        Msg::Failed { message } => Sent::Failed(message),
        Msg::NoSpace { detail, kept } => Sent::NoSpace(NoSpace { detail, kept }),
        other => bail!(
            "protocol error: unexpected {}",
            super::receive::kind(&other)
        ),
    })
}

/// After the receiver said it has a file of this size under the name: hashes `file`, tells
/// the receiver whether the two are the same, and ends the offer either way.
async fn compare<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    file: File,
    header: &FileHeader,
    theirs: String,
) -> Result<Sent> {
    let ours = tokio::task::spawn_blocking(move || tree::file_hash(&file))
        .await
        .map_err(|e| anyhow!("hashing failed: {e}"))?
        .map_err(|e| anyhow!("{}: {e}", super::names::escape(&header.name)))?;
    let same = tree::unhex(&theirs).is_some() && tree::unhex(&theirs) == tree::unhex(&ours);
    t.send_control(&Msg::Same { same }).await?;
    Ok(match same {
        true => Sent::UpToDate { blake3: ours },
        false => Sent::Refused(super::receive::exists_message(&header.name)),
    })
}

/// The reader thread: bytes from `offset` to `size`, each complete segment's hash after it,
/// in frames taken from `spare` when the network side has given one back.
fn read(
    mut f: File,
    size: u64,
    offset: u64,
    tx: mpsc::Sender<Item>,
    spare: std::sync::mpsc::Receiver<Records>,
) -> io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    let held = if size <= SEGMENT {
        0
    } else {
        offset.div_ceil(SEGMENT)
    };
    // Placeholders only set the position: the sender never merges a root, the receiver
    // does, from the values it verified earlier.
    let mut h = TreeHasher::resume(size, vec![[0; 32]; held as usize]);
    let mut done = Vec::new();
    let mut pos = offset;
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "connection closed");
    while pos < size {
        let n = (MAX_DATA as u64).min(size - pos) as usize;
        // Read straight into the records that will carry it, after the frame's header.
        let reused = spare
            .try_recv()
            .unwrap_or_else(|_| Records::with_capacity(0));
        let mut frame = link::data_frame(reused, DATA, n);
        if frame.read_from(&mut f, n)? < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            ));
        }
        for piece in frame.plain_from(link::DATA_HEADER) {
            h.update(piece, &mut done);
        }
        tx.blocking_send(Item::Data(frame)).map_err(|_| gone())?;
        for (i, cv) in done.drain(..) {
            tx.blocking_send(Item::Segment(i, cv)).map_err(|_| gone())?;
        }
        pos += n as u64;
    }
    if let Some(root) = h.single_root() {
        tx.blocking_send(Item::Segment(0, root))
            .map_err(|_| gone())?;
    }
    Ok(())
}

/// The header describing an open file, to be sent as `name`.
pub fn header_for(file: &File, name: String) -> io::Result<FileHeader> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(FileHeader {
        name,
        size: md.len(),
        mode: md.mode() & 0o777,
        mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
    })
}
