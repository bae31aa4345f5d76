//! The receiver's files on disk: the partial file beside the target, its resume state, and
//! the atomic step that puts a verified file under its final name.
//!
//! State file: one text line `taojie-part v1 SIZE MTIME_NS`, then the 32-byte chaining value
//! of each verified segment, appended after the partial file's bytes were synced. Resuming
//! reads these and truncates the partial file to the last verified segment: nothing is
//! hashed again, and at most one checkpoint's worth of bytes is fetched twice.
//!
//! What a resume trusts: every held segment matched the sender's own hash when it arrived,
//! and the state is used only if the new header's size and mtime (to the nanosecond) equal
//! the stamp — rsync's quick check. A source rewritten in place with both unchanged would
//! keep stale segments; anything else starts over from byte 0, without asking.
//!
//! All three files live in one directory held open (see [`Dir`]): they are created, renamed
//! and removed by name relative to it, never by path.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;

pub use super::journal::Journal;
pub use super::space::NoSpace;
use super::space::no_space;
use super::{Dir, Root};
use crate::files::names::{PART_SUFFIX, RelName, STATE_SUFFIX, escape};
use crate::files::protocol::FileHeader;
use crate::files::tree::{SEGMENT, TreeHasher};

/// A file being received, at `offset` bytes verified.
pub struct Partial {
    /// The partial file, positioned at `offset`.
    pub file: File,
    state: Option<File>,
    /// Hash state, holding the verified segments.
    pub hasher: TreeHasher,
    /// What the sender declared.
    pub header: FileHeader,
    /// Bytes already held and verified.
    pub offset: u64,
    /// Replace an existing file at the final name.
    pub overwrite: bool,
    /// Keep nothing if the transfer fails (the sender asked to start over).
    pub fresh: bool,
    /// The final name, for messages.
    pub display: String,
    dir: Dir,
    final_name: String,
    part_name: String,
    state_name: String,
}

/// The end of the refusal a file gets while another connection still receives it: after a
/// broken connection, the server's side of it may hold the file a little longer, so a
/// retrying client waits and asks again.
pub const BUSY: &str = "is being received by someone else";

fn refuse(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, msg)
}

impl Partial {
    /// Prepares to receive `header` as `name` under `root`: refuses an existing file unless
    /// `overwrite`, and a size the disk cannot hold; picks up an earlier attempt's partial
    /// file when its state matches the header. Directories on the way are made only once
    /// the file is accepted, so a refusal leaves none behind.
    pub fn open(
        root: &Root,
        name: &RelName,
        header: &FileHeader,
        overwrite: bool,
    ) -> io::Result<Self> {
        Self::open_with(root, name, header, overwrite, false)
    }

    /// [`Partial::open`], or with `fresh` one that ignores (and on refusal removes) an earlier
    /// attempt's partial file and whose own bytes are not kept if the disk fills.
    pub fn open_with(
        root: &Root,
        name: &RelName,
        header: &FileHeader,
        overwrite: bool,
        fresh: bool,
    ) -> io::Result<Self> {
        let mut place = root.place(name)?;
        if !place.exists() {
            // Nothing of the file exists yet: it must fit before anything is made for it.
            let free = place.dir().free_space()?;
            if header.size > free {
                return Err(no_space(header.size, free, 0, 0));
            }
            place.make()?;
        }
        let dir = place.dir().clone();
        let opened = Self::open_in(dir, place.file_name(), header, overwrite, fresh);
        if opened.is_err() {
            place.undo();
        }
        opened
    }

    fn open_in(
        dir: Dir,
        name: &str,
        header: &FileHeader,
        overwrite: bool,
        fresh: bool,
    ) -> io::Result<Self> {
        let display = escape(&header.name);
        match dir.kind_of(name)? {
            Some(rustix::fs::FileType::Directory) => {
                return Err(refuse(format!("{display} exists and is a directory")));
            }
            Some(_) if !overwrite => {
                return Err(refuse(format!(
                    "{display} already exists; not replaced (use --overwrite to replace it)"
                )));
            }
            _ => {}
        }
        let part_name = format!(".{name}{PART_SUFFIX}");
        let state_name = format!(".{name}{STATE_SUFFIX}");
        let mut file = dir.open_rw(&part_name, false)?;
        // A connection that just broke may still be recording its progress: give it a moment
        // before calling the file busy.
        let mut tries = 0;
        while file.try_lock().is_err() {
            tries += 1;
            if tries > 50 {
                return Err(refuse(format!("{display} {BUSY}")));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (cvs, held) = match fresh {
            true => (Vec::new(), 0),
            false => resume_point(&read_state(&dir, &state_name), header),
        };
        let len = file.metadata()?.len();
        let (cvs, offset) = if held > 0 && len >= held {
            (cvs, held)
        } else {
            (Vec::new(), 0)
        };
        // Bytes past the offset are about to be cut off: they count as free.
        let free = dir.free_space()?.saturating_add(len - offset.min(len));
        let need = header.size - offset;
        if need > free {
            // Nothing worth keeping, or the client asked to keep nothing: the space goes back.
            let kept = if offset == 0 || fresh {
                let _ = dir.remove(&part_name);
                let _ = dir.remove(&state_name);
                0
            } else {
                offset
            };
            return Err(no_space(need, free, offset, kept));
        }
        file.set_len(offset)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut state = dir.open_rw(&state_name, offset == 0)?;
        if offset == 0 {
            state.write_all(&state_bytes(header, &[]))?;
        } else {
            // Drop a torn tail so later appends stay 32-byte aligned.
            state.set_len((stamp(header).len() + 32 * cvs.len()) as u64)?;
            state.seek(SeekFrom::End(0))?;
        }
        Ok(Partial {
            file,
            state: Some(state),
            hasher: TreeHasher::resume(header.size, cvs),
            header: header.clone(),
            offset,
            overwrite,
            fresh,
            display,
            dir,
            final_name: name.to_string(),
            part_name,
            state_name,
        })
    }

    /// After the disk filled mid-file (the journal closed): keeps the segments the state
    /// file records, cutting the partial file back to them so the rest of the space is free
    /// again, or removes both when none are recorded or the sender asked for `fresh`.
    /// Returns the bytes kept.
    pub fn keep_verified(self) -> u64 {
        let (_, kept) = resume_point(&read_state(&self.dir, &self.state_name), &self.header);
        if kept == 0 || self.fresh || self.file.set_len(kept).is_err() {
            self.discard();
            return 0;
        }
        kept
    }

    /// Starts the journal: a thread that makes the written bytes durable, then records the
    /// segments they hold, while the writer goes on writing.
    pub fn journal(&mut self) -> io::Result<Journal> {
        let data = self.file.try_clone()?;
        let state = self
            .state
            .take()
            .ok_or_else(|| io::Error::other("journal already started"))?;
        Journal::start(data, state)
    }

    /// Syncs the verified file, applies mode (permission bits only: never set-id or sticky)
    /// and mtime, and moves it to its final name (never over an existing file unless
    /// `overwrite`), then syncs the directory. On failure nothing of it is kept.
    pub fn commit(self) -> io::Result<()> {
        let done = self.put_in_place();
        if done.is_err() {
            self.remove_files();
        }
        done
    }

    fn put_in_place(&self) -> io::Result<()> {
        let mode = self.header.mode & 0o777;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        let mtime = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_nanos(
            self.header.mtime_ns.max(0) as u64,
        ));
        if let Some(t) = mtime {
            self.file.set_modified(t)?;
        }
        self.file.sync_all()?;
        let (part, last) = (self.part_name.as_str(), self.final_name.as_str());
        if self.overwrite {
            self.dir.rename(part, last)?;
        } else {
            self.dir
                .rename_new(part, last)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => {
                        refuse(format!("{} appeared meanwhile; not replaced", self.display))
                    }
                    _ => e,
                })?;
        }
        let _ = self.dir.remove(&self.state_name);
        self.dir.sync()
    }

    /// Removes the partial file and its state: the transfer was rejected.
    pub fn discard(self) {
        self.remove_files();
    }

    fn remove_files(&self) {
        let _ = self.dir.remove(&self.part_name);
        let _ = self.dir.remove(&self.state_name);
    }
}

/// The state file's first line for `header`.
fn stamp(header: &FileHeader) -> String {
    format!("taojie-part v1 {} {}\n", header.size, header.mtime_ns)
}

/// A state file's bytes (empty when it is missing or unreadable).
fn read_state(dir: &Dir, name: &str) -> Vec<u8> {
    let Ok(mut f) = dir.open_read(name) else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    // The state of a 1 TiB file is 8 MiB of chaining values; a bigger one is not ours.
    match Read::by_ref(&mut f).take(16 << 20).read_to_end(&mut buf) {
        Ok(_) => buf,
        Err(_) => Vec::new(),
    }
}

/// What the bytes of a state file let a transfer of `header` resume from: the chaining values
/// of the verified segments and the bytes they cover. Nothing unless the first line is
/// `header`'s stamp, and never more than a transfer of that size records: no chaining value
/// for a file of one segment (it is hashed as a plain root), at most one per segment for a
/// longer one. A state with more (damaged, or not ours) would otherwise resume a one-segment
/// file at its end, an offset the sender refuses on every retry.
pub fn resume_point(state: &[u8], header: &FileHeader) -> (Vec<[u8; 32]>, u64) {
    let Some(rest) = state.strip_prefix(stamp(header).as_bytes()) else {
        return (Vec::new(), 0);
    };
    let recorded = if header.size <= SEGMENT {
        0
    } else {
        TreeHasher::segments(header.size)
    };
    let cvs: Vec<[u8; 32]> = rest
        .chunks_exact(32)
        .take(usize::try_from(recorded).unwrap_or(usize::MAX))
        .map(|c| c.try_into().expect("32-byte chunk"))
        .collect();
    let held = (cvs.len() as u64 * SEGMENT).min(header.size);
    (cvs, held)
}

/// The state file's bytes for `header` with `cvs` recorded, as [`Partial::journal`] leaves it.
pub fn state_bytes(header: &FileHeader, cvs: &[[u8; 32]]) -> Vec<u8> {
    let mut out = stamp(header).into_bytes();
    cvs.iter().for_each(|cv| out.extend_from_slice(cv));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> RelName {
        crate::files::names::validate("f").unwrap()
    }

    fn header(size: u64, mtime_ns: i64) -> FileHeader {
        FileHeader {
            name: "f".into(),
            size,
            mode: 0o640,
            mtime_ns,
        }
    }

    /// Writes `segs` whole segments into a fresh partial and records them, as a transfer
    /// cut after them would.
    fn interrupted(root: &Root, h: &FileHeader, segs: usize) {
        let mut p = Partial::open(root, &f(), h, false).unwrap();
        assert_eq!(p.offset, 0);
        let journal = p.journal().unwrap();
        let chunk = vec![7u8; SEGMENT as usize];
        let mut cvs = Vec::new();
        for _ in 0..segs {
            p.file.write_all(&chunk).unwrap();
            p.hasher.update(&chunk, &mut Vec::new());
        }
        cvs.extend_from_slice(p.hasher.chaining_values());
        journal.record(cvs).unwrap();
        journal.close().unwrap();
    }

    #[test]
    fn a_matching_header_resumes_and_a_changed_source_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let h = header(3 * SEGMENT + 10, 42);
        interrupted(&root, &h, 2);
        // Bytes written past the last recorded segment are not trusted.
        let part = dir.path().join(".f.taojie-part");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .unwrap()
            .write_all(b"unrecorded")
            .unwrap();
        let p = Partial::open(&root, &f(), &h, false).unwrap();
        assert_eq!(p.offset, 2 * SEGMENT);
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 2 * SEGMENT);
        drop(p);
        let p = Partial::open(&root, &f(), &header(3 * SEGMENT + 10, 43), false).unwrap();
        assert_eq!(p.offset, 0, "a source with another mtime must start over");
        p.discard();
        assert!(!part.exists() && !dir.path().join(".f.taojie-state").exists());
    }

    #[test]
    fn a_state_never_resumes_past_what_a_transfer_records() {
        // Found by fuzz/ (files_state): a one-segment file's state holding a chaining value
        // resumed at the file's end, an offset the sender refuses on every retry.
        let small = header(1000, 7);
        let state = state_bytes(&small, &[[1; 32]]);
        assert_eq!(resume_point(&state, &small), (Vec::new(), 0));
        let big = header(2 * SEGMENT + 1, 7);
        let state = state_bytes(&big, &[[1; 32]; 5]);
        assert_eq!(resume_point(&state, &big), (vec![[1; 32]; 3], big.size));
    }

    #[test]
    fn commit_never_replaces_an_existing_file_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let h = header(0, 0);
        let p = Partial::open(&root, &f(), &h, false).unwrap();
        std::fs::write(dir.path().join("f"), b"appeared").unwrap();
        assert!(p.commit().is_err());
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"appeared");
        assert!(!dir.path().join(".f.taojie-part").exists());
        let err = Partial::open(&root, &f(), &h, false).err().unwrap();
        assert!(err.to_string().contains("--overwrite"));
        Partial::open(&root, &f(), &h, true)
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"");
    }
}
