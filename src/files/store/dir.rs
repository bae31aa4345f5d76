//! One open directory beneath the root, and everything done inside it by name: open, create,
//! stat, rename, link, remove, sync. Names here are single components (or, for
//! [`Dir::subdir`], validated relative names), always resolved relative to this descriptor.
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::resolve::{explain, open_beneath};

/// An open directory; cheap to clone (the descriptor is shared).
#[derive(Clone)]
pub struct Dir {
    fd: Arc<OwnedFd>,
}

impl Dir {
    /// Takes over a descriptor opened with `O_DIRECTORY`.
    pub(super) fn from_fd(fd: OwnedFd) -> Dir {
        Dir { fd: Arc::new(fd) }
    }

    /// The descriptor.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The existing directory `name` below this one.
    pub fn subdir(&self, name: &str) -> io::Result<Dir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        self.open(name, flags, 0).map(Dir::from_fd)
    }

    /// Makes the directory `name` (or finds the one someone else just made) and opens it;
    /// returns it and whether this call made it.
    pub fn make_subdir(&self, name: &str) -> io::Result<(Dir, bool)> {
        let made = match rustix::fs::mkdirat(self.fd.as_fd(), name, Mode::from_raw_mode(0o777)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(explain(e)),
        };
        Ok((self.subdir(name)?, made))
    }

    /// Opens `name` for reading and writing, creating it (mode 0600) if missing.
    pub fn open_rw(&self, name: &str, truncate: bool) -> io::Result<File> {
        let mut flags = OFlags::RDWR | OFlags::CREATE;
        if truncate {
            flags |= OFlags::TRUNC;
        }
        self.open(name, flags, 0o600).map(File::from)
    }

    /// Opens the existing `name` for reading.
    pub fn open_read(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        self.open(name, flags, 0).map(File::from)
    }

    /// What `name` is (a link is a link, not what it points to), or `None` if nothing is.
    pub fn kind_of(&self, name: &str) -> io::Result<Option<FileType>> {
        match rustix::fs::statat(self.fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `from` to `to`, replacing whatever `to` is.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let fd = self.fd.as_fd();
        Ok(rustix::fs::renameat(fd, from, fd, to)?)
    }

    /// Renames `from` to `to` only if `to` does not exist (`AlreadyExists` otherwise): no
    /// moment in which a file that appeared at `to` since a check could be replaced.
    pub fn rename_new(&self, from: &str, to: &str) -> io::Result<()> {
        let fd = self.fd.as_fd();
        match rustix::fs::renameat_with(fd, from, fd, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // A filesystem without RENAME_NOREPLACE: link(2), which also fails on an
            // existing name, then the old name goes.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
        match rustix::fs::linkat(fd, from, fd, to, AtFlags::empty()) {
            Ok(()) => self.remove(from),
            Err(Errno::EXIST) => Err(Errno::EXIST.into()),
            // Nor hard links: check, then rename (a small window).
            Err(_) if self.kind_of(to)?.is_none() => self.rename(from, to),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `from` in `src` to `to` in this directory; with `replace`, over whatever `to`
    /// is, else only if `to` does not exist (`AlreadyExists`).
    pub fn move_here(&self, src: &Dir, from: &str, to: &str, replace: bool) -> io::Result<()> {
        let (a, b) = (src.fd.as_fd(), self.fd.as_fd());
        if replace {
            return Ok(rustix::fs::renameat(a, from, b, to)?);
        }
        match rustix::fs::renameat_with(a, from, b, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if self.kind_of(to)?.is_none() => {
                // No RENAME_NOREPLACE here: check, then rename (a small window).
                Ok(rustix::fs::renameat(a, from, b, to)?)
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Err(Errno::EXIST.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the file `name`.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            self.fd.as_fd(),
            name,
            AtFlags::empty(),
        )?)
    }

    /// Removes the directory `name` if it is empty.
    pub fn remove_dir(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(
            self.fd.as_fd(),
            name,
            AtFlags::REMOVEDIR,
        )?)
    }

    /// Makes this directory's entries durable (after a rename or link into it).
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(self.fd.as_fd())?)
    }

    /// Bytes an unprivileged user may still write on this directory's filesystem.
    pub fn free_space(&self) -> io::Result<u64> {
        let st = rustix::fs::fstatvfs(self.fd.as_fd())?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn open(&self, name: &str, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
        open_beneath(self.fd.as_fd(), name, flags, Mode::from_raw_mode(mode))
    }
}

/// Where a new file goes (from [`Root::place`](super::Root::place)): the deepest directory
/// on its way that exists, and the ones still to make.
pub struct Place {
    dir: Dir,
    missing: Vec<String>,
    made: Vec<(Dir, String)>,
    file: String,
}

impl Place {
    pub(super) fn new(dir: Dir, missing: Vec<String>, file: &str) -> Place {
        Place {
            dir,
            missing,
            made: Vec::new(),
            file: file.to_string(),
        }
    }

    /// Whether the file's directory exists (then [`Place::dir`] is it).
    pub fn exists(&self) -> bool {
        self.missing.is_empty()
    }

    /// The file's directory once it exists, else the deepest existing one on the way.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The file's own name, in [`Place::dir`] once it exists.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Makes the missing directories, each opened beneath the one before (a link put in
    /// the way meanwhile makes this fail), and returns the file's directory.
    pub fn make(&mut self) -> io::Result<&Dir> {
        for part in std::mem::take(&mut self.missing) {
            let (next, made) = self.dir.make_subdir(&part)?;
            if made {
                self.made.push((self.dir.clone(), part));
            }
            self.dir = next;
        }
        Ok(&self.dir)
    }

    /// Removes the directories [`Place::make`] made, deepest first, where still empty: for a
    /// request refused after all.
    pub fn undo(&mut self) {
        for (parent, name) in self.made.drain(..).rev() {
            let _ = parent.remove_dir(&name);
        }
    }
}
