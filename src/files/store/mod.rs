//! The files service's storage: one directory, opened once as a directory descriptor, and
//! every name beneath it resolved by the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` (see [`resolve`]). Reading, listing, making directories, creating
//! and resuming partial files, committing them (fsync, then `renameat`, or `renameat2` with
//! `RENAME_NOREPLACE` when nothing may be replaced) and removing them all happen relative to
//! descriptors obtained that way, never by path. A local user who can write inside the root
//! and swaps a directory for a symbolic link at any moment can make an operation fail, never
//! make it reach outside the root.
//!
//! The native listener, `ls`, the classic listener and the `get` client's output directory
//! all go through [`Root`]; so will anything else built on this storage.
//!
//! The module pieces: [`resolve`] is the one lookup, [`dir`] an open directory and what is
//! done inside it, [`walk`] listings and trees, [`edit`] making, moving and removing names, [`visit`] a walk
//! one entry at a time, [`partial`] a file being received (with its
//! [`journal`]), [`writer`] the one way bytes are written into it (whatever carried them), and
//! [`space`] the refusal when it does not fit.
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use super::names::RelName;

pub mod dir;
pub mod edit;
pub mod journal;
pub mod partial;
pub mod resolve;
pub mod space;
pub mod visit;
pub mod walk;
pub mod writer;

pub use dir::{Dir, Place};
pub use walk::{Entry, Found, Kind, Tree};

/// A directory tree that names are resolved beneath; cheap to clone (the descriptor is
/// shared).
#[derive(Clone)]
pub struct Root {
    dir: Dir,
    path: Arc<PathBuf>,
}

impl Root {
    /// Opens `path` as the root. The path itself is the operator's choice and may go through
    /// links; nothing below it will.
    pub fn open(path: &Path) -> io::Result<Root> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Root {
            dir: Dir::from_fd(fd),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The path the root was opened from, for messages only.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory itself.
    pub fn top(&self) -> &Dir {
        &self.dir
    }

    /// The existing directory `name` (the root itself for `None`).
    pub fn dir(&self, name: Option<&RelName>) -> io::Result<Dir> {
        match name {
            None => Ok(self.dir.clone()),
            Some(n) => self
                .beneath(n.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, 0)
                .map(Dir::from_fd),
        }
    }

    /// Opens the regular file `name` for reading. The descriptor is what a download is read
    /// from: whatever happens to the name afterwards, the bytes sent are this file's.
    pub fn open_file(&self, name: &RelName) -> io::Result<File> {
        // O_NONBLOCK: a FIFO planted under the name must not hang the open.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let file = File::from(self.beneath(name.as_str(), flags, 0)?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(file)
    }

    /// Where a new file `name` goes: the directory it would live in, as far as it exists,
    /// and the directories still to make (made only by [`Place::make`], so that a request
    /// refused before then leaves nothing behind).
    pub fn place(&self, name: &RelName) -> io::Result<Place> {
        let parts: Vec<&str> = name.components().collect();
        let parents = &parts[..parts.len() - 1];
        if parents.is_empty() {
            return Ok(Place::new(self.dir.clone(), Vec::new(), name.file_name()));
        }
        // Usually the directories exist: one lookup for all of them.
        match self.beneath(&parents.join("/"), OFlags::RDONLY | OFlags::DIRECTORY, 0) {
            Ok(fd) => return Ok(Place::new(Dir::from_fd(fd), Vec::new(), name.file_name())),
            // Walked below, to find where it stops and to name a part that is no directory.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(e),
        }
        let mut dir = self.dir.clone();
        for (i, part) in parents.iter().enumerate() {
            match dir.subdir(part) {
                Ok(d) => dir = d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let missing = parents[i..].iter().map(|p| p.to_string()).collect();
                    return Ok(Place::new(dir, missing, name.file_name()));
                }
                Err(e) => return Err(not_dir(e, part)),
            }
        }
        Ok(Place::new(dir, Vec::new(), name.file_name()))
    }

    /// Makes the directory `name` and any missing on its way, each beneath the one before
    /// (an existing one is fine; a file in the way is `NotADirectory`, naming it).
    pub fn make_dirs(&self, name: &RelName) -> io::Result<()> {
        let mut dir = self.dir.clone();
        for part in name.components() {
            dir = match dir.make_subdir(part) {
                Ok((next, _)) => next,
                Err(e) => return Err(not_dir(e, part)),
            };
        }
        Ok(())
    }

    /// Opens `name` beneath the root (see [`resolve`]).
    pub(super) fn beneath(&self, name: &str, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        resolve::open_beneath(
            self.dir.fd().as_fd(),
            name,
            flags,
            Mode::from_raw_mode(mode),
        )
    }
}

/// `ENOTDIR` from a lookup, with the component that is not a directory named.
fn not_dir(e: io::Error, part: &str) -> io::Error {
    match e.kind() {
        io::ErrorKind::NotADirectory => io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", super::names::escape(part)),
        ),
        _ => e,
    }
}

#[cfg(test)]
mod tests;
