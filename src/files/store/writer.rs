//! Writing a file being received: the one path every upload takes, whatever carried its
//! bytes (`put`'s native connection, the page's chunks, a WebDAV `PUT`). Bytes are written to
//! the [`Partial`] file and hashed segment by segment as they come; a segment counts as held
//! only once it is vouched for — by the sender's own hash of it (`put`), or by a check of the
//! whole request it came in (the page's chunk digest) — and only held segments are recorded
//! in the resume state (by the [`Journal`], every
//! [`CHECKPOINT_EVERY`] segments and whenever the transfer stops). Every finished
//! [`WINDOW`] of bytes goes to the [`Journal`]'s thread too, which writes it back to disk while
//! the bytes stream on and drops what is on disk from the page cache, so the final fsync is
//! short. The file goes under its name only when every byte is in and every segment held
//! ([`Writer::end`]).
use std::collections::VecDeque;
use std::io::{self, Seek, SeekFrom, Write};

use super::journal::{Journal, WINDOW};
use super::partial::{NoSpace, Partial};
use crate::files::progress::human;
use crate::files::tree::{self, SEGMENT, TreeHasher};

/// Segments held in memory before the partial file is synced and they are recorded: the
/// most a crash costs on resume (64 MiB).
pub const CHECKPOINT_EVERY: usize = 16;

/// A [`Partial`] file being written (see the module's doc).
pub struct Writer {
    p: Partial,
    journal: Journal,
    /// Segments complete but not vouched for yet, oldest first: (index, chaining value).
    pending: VecDeque<(u64, [u8; 32])>,
    /// Vouched for, not yet recorded.
    unsynced: Vec<[u8; 32]>,
    /// The next segment to vouch for.
    next: u64,
    total: u64,
    written_to: u64,
    done: Vec<(u64, [u8; 32])>,
}

/// What [`Writer::check_segment`] says of a sender's hash that is not the receiver's.
fn mismatch(display: &str, index: u64, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{display}: BLAKE3 mismatch in bytes {}..{}: corrupted in transit; discarded",
            index * SEGMENT,
            ((index + 1) * SEGMENT).min(size)
        ),
    )
}

impl Writer {
    /// Starts writing `p` at its offset (its journal thread starts too).
    pub fn start(mut p: Partial) -> io::Result<Writer> {
        let journal = p.journal()?;
        Ok(Writer {
            next: p.hasher.chaining_values().len() as u64,
            total: TreeHasher::segments(p.header.size),
            written_to: p.offset,
            journal,
            p,
            pending: VecDeque::new(),
            unsynced: Vec::new(),
            done: Vec::new(),
        })
    }

    /// The file's declared size.
    pub fn size(&self) -> u64 {
        self.p.header.size
    }

    /// The file's name, escaped, for messages.
    pub fn display(&self) -> &str {
        &self.p.display
    }

    /// Bytes written so far (held or not).
    pub fn position(&self) -> u64 {
        self.written_to
    }

    /// Bytes held: every segment up to here vouched for. A later transfer resumes here.
    pub fn held(&self) -> u64 {
        let size = self.size();
        if size <= SEGMENT {
            if self.next > 0 { size } else { 0 }
        } else {
            (self.next * SEGMENT).min(size)
        }
    }

    /// Whether every byte is in and held.
    pub fn complete(&self) -> bool {
        self.p.hasher.position() == self.size() && self.next == self.total
    }

    /// Writes and hashes the next bytes; more than the declared size is refused, and nothing
    /// of such bytes is written.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let size = self.size();
        let end = self.written_to + bytes.len() as u64;
        if end > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("more bytes than the {size} declared"),
            ));
        }
        self.p.file.write_all(bytes)?;
        // Each finished window (and the end) goes to the disk thread, which writes it back
        // while the bytes stream on.
        if end / WINDOW != self.written_to / WINDOW || end == size {
            let from = self.written_to - self.written_to % WINDOW;
            self.journal.written(from, end)?;
        }
        self.written_to = end;
        self.p.hasher.update(bytes, &mut self.done);
        self.pending.extend(self.done.drain(..));
        Ok(())
    }

    /// Holds segment `index` if `hash` is the receiver's own hash of it (the sender's hash,
    /// sent after the segment's bytes, as `put` does); a mismatch is an `InvalidData` error.
    pub fn check_segment(&mut self, index: u64, hash: [u8; 32]) -> io::Result<()> {
        let size = self.size();
        let mine = if size <= SEGMENT {
            self.p.hasher.single_root()
        } else {
            self.pending.pop_front().map(|(_, cv)| cv)
        };
        if index != self.next || mine != Some(hash) {
            return Err(mismatch(&self.p.display, index, size));
        }
        self.hold(hash)
    }

    /// Holds every segment complete so far: the caller checked the bytes they came in by
    /// other means (a digest of the whole request). For a file of one segment, only once all
    /// its bytes are in.
    pub fn vouch(&mut self) -> io::Result<()> {
        if self.size() <= SEGMENT {
            if let Some(root) = self.p.hasher.single_root()
                && self.next == 0
            {
                return self.hold(root);
            }
            return Ok(());
        }
        while let Some((_, cv)) = self.pending.pop_front() {
            self.hold(cv)?;
        }
        Ok(())
    }

    fn hold(&mut self, cv: [u8; 32]) -> io::Result<()> {
        self.next += 1;
        if self.size() > SEGMENT {
            self.unsynced.push(cv);
            if self.unsynced.len() >= CHECKPOINT_EVERY {
                self.journal.record(std::mem::take(&mut self.unsynced))?;
            }
        }
        Ok(())
    }

    /// Forgets every byte past [`Writer::held`]: the partial file is cut back there and the
    /// hash goes back to its state then (the bytes since came in a request that failed its
    /// check, or broke off).
    pub fn rewind(&mut self) -> io::Result<()> {
        let size = self.size();
        let held = self.held();
        let keep = if size <= SEGMENT {
            0
        } else {
            self.next as usize
        };
        let cvs = self.p.hasher.chaining_values()[..keep].to_vec();
        if held == size && self.p.hasher.position() == size {
            return Ok(()); // all held: nothing to forget
        }
        self.p.hasher = TreeHasher::resume(size, cvs);
        self.pending.clear();
        self.p.file.set_len(held)?;
        self.p.file.seek(SeekFrom::Start(held))?;
        self.written_to = held;
        Ok(())
    }

    /// Ends the transfer as `res` says: `Ok` commits the file under its name (returning its
    /// BLAKE3, hex); `Interrupted` keeps the held part for a resume (unless the sender asked
    /// for a fresh start); a full disk keeps the held part and says so ([`NoSpace`]); any
    /// other error discards the file.
    pub fn end(mut self, res: io::Result<()>) -> io::Result<String> {
        // Durable progress first: on success it is moot, on interruption or a full disk it is
        // what resumes.
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::Interrupted || NoSpace::is_full(e)) {
            let _ = self.journal.record(std::mem::take(&mut self.unsynced));
        }
        let held = self.held();
        let Writer {
            p,
            journal,
            written_to,
            ..
        } = self;
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
                // Kept for a resume, unless the sender asked to start over and keep nothing;
                // the error says how much ([`Kept`]).
                let kept = if p.fresh { 0 } else { held };
                if p.fresh {
                    p.discard();
                }
                Err(io::Error::new(e.kind(), Kept(kept)))
            }
            Err(e) if NoSpace::is_full(&e) => {
                let detail = format!(
                    "the disk filled after {} of {}",
                    human(written_to),
                    human(p.header.size)
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

    /// Stops here, keeping the held part for a later resume (see [`Writer::end`]).
    pub fn interrupt(self) {
        let _ = self.end(Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "interrupted",
        )));
    }
}

/// What an interrupted writer kept: the error inside its [`io::ErrorKind::Interrupted`].
#[derive(Debug)]
pub struct Kept(pub u64);

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted; {} verified bytes kept", self.0)
    }
}

impl std::error::Error for Kept {}
