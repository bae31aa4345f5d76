//! Reading directories beneath the root: one directory's listing (`ls`), and every regular
//! file under a directory (`get` of a tree, `put` of a local one). Entries are read from a
//! descriptor and looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` relative to it; a tree is
//! walked through subdirectory descriptors, links skipped, never followed.
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, OFlags};

use super::resolve::NotBeneath;
use super::{Dir, Root};
use crate::files::names::{self, PART_SUFFIX, RelName, STATE_SUFFIX};

/// What a name is, as a listing says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (a link, a FIFO, a device).
    Other,
}

impl Kind {
    /// `file`, `dir` or `other`, as the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Other => "other",
        }
    }

    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            _ => Kind::Other,
        }
    }
}

/// One name in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name within the listed directory (UTF-8; other names are left out).
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes (0 unless a file).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// What a name for a download is.
pub enum Found {
    /// A regular file, open: the bytes sent are this descriptor's.
    File(File),
    /// A directory: what is under it.
    Tree(Tree),
}

/// What a walk of a directory found that can cross the wire, relative to it.
#[derive(Debug, Default)]
pub struct Tree {
    /// The regular files.
    pub files: Vec<RelName>,
    /// The directories with nothing in them to send (no file, no directory): made on the
    /// other side as they are, since no file's path makes them.
    pub empty_dirs: Vec<RelName>,
}

impl Root {
    /// The entries of the directory `dir` (the root for `None`), sorted by name; taojie's own
    /// partial files are left out.
    pub fn list(&self, dir: Option<&RelName>) -> io::Result<Vec<Entry>> {
        let dir = self.dir(dir)?;
        let mut out = Vec::new();
        for name in names_in(&dir)? {
            match entry_in(&dir, name)? {
                Some(e) => out.push(e),
                None => continue, // gone meanwhile
            }
        }
        Ok(out)
    }

    /// What `name` itself is (a link is a link), as a listing of it alone shows it: under
    /// the name as given. taojie's own partial files are not there to see.
    pub fn entry(&self, name: &RelName) -> io::Result<Entry> {
        let last = name.file_name();
        if last.ends_with(PART_SUFFIX) || last.ends_with(STATE_SUFFIX) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let dir = match name.as_str().rsplit_once('/') {
            None => self.top().clone(),
            Some((parent, _)) => {
                Dir::from_fd(self.beneath(parent, OFlags::RDONLY | OFlags::DIRECTORY, 0)?)
            }
        };
        let st = rustix::fs::statat(dir.fd().as_fd(), last, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = Kind::of(FileType::from_raw_mode(st.st_mode));
        Ok(Entry {
            name: name.as_str().to_string(),
            kind,
            size: if kind == Kind::File {
                st.st_size as u64
            } else {
                0
            },
            mtime_ns: (st.st_mtime as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(st.st_mtime_nsec as i64),
        })
    }

    /// `name` opened for a download: the file itself, or the files of the tree it heads.
    pub fn find(&self, name: &RelName) -> io::Result<Found> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd: OwnedFd = self.beneath(name.as_str(), flags, 0)?;
        let file = File::from(fd);
        let md = file.metadata()?;
        if md.is_file() {
            Ok(Found::File(file))
        } else if md.is_dir() {
            Ok(Found::Tree(tree_under(Dir::from_fd(file.into()))?))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file or directory",
            ))
        }
    }

    /// The regular files and empty directories under the directory `dir` (the root for
    /// `None`), relative to it.
    pub fn tree_under(&self, dir: Option<&RelName>) -> io::Result<Tree> {
        tree_under(self.dir(dir)?)
    }
}

/// What `name` in `dir` is (a link is a link), or `None` if it is gone.
pub(super) fn entry_in(dir: &Dir, name: String) -> io::Result<Option<Entry>> {
    let st = match rustix::fs::statat(dir.fd().as_fd(), name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(entry_of(name, &st)))
}

/// An [`Entry`] from a stat.
pub(super) fn entry_of(name: String, st: &rustix::fs::Stat) -> Entry {
    let kind = Kind::of(FileType::from_raw_mode(st.st_mode));
    Entry {
        name,
        kind,
        size: if kind == Kind::File {
            st.st_size as u64
        } else {
            0
        },
        mtime_ns: st
            .st_mtime
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec as i64),
    }
}

/// The names in `dir` that can cross the wire (UTF-8, valid as names, not taojie's partial
/// files), sorted.
pub(super) fn names_in(dir: &Dir) -> io::Result<Vec<String>> {
    // A descriptor of its own: reading entries moves its position, and `dir`'s is shared.
    let entries = rustix::fs::Dir::read_from(dir.fd())?;
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let Ok(name) = e.file_name().to_str() else {
            continue; // not UTF-8: cannot be named on the wire
        };
        if matches!(name, "." | "..") || name.ends_with(PART_SUFFIX) || name.ends_with(STATE_SUFFIX)
        {
            continue;
        }
        out.push(name.to_string());
    }
    out.sort();
    Ok(out)
}

/// Every regular file under `top`, and every directory with nothing in it to send, relative
/// to it; links and names that cannot be sent (see [`names::validate`]) are skipped.
fn tree_under(top: Dir) -> io::Result<Tree> {
    let mut out = Tree::default();
    let mut stack = vec![(top, String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let before = (out.files.len(), stack.len());
        for name in names_in(&dir)? {
            let Ok(rel) = names::validate(&format!("{prefix}{name}")) else {
                continue;
            };
            let kind = match rustix::fs::statat(
                dir.fd().as_fd(),
                name.as_str(),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => Kind::of(FileType::from_raw_mode(st.st_mode)),
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            match kind {
                Kind::File => out.files.push(rel),
                // A directory swapped for a link (or removed) since the stat: skipped.
                Kind::Dir => match dir.subdir(&name) {
                    Ok(sub) => stack.push((sub, format!("{}/", rel.as_str()))),
                    Err(e) if NotBeneath::is(&e) || e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
                Kind::Other => {}
            }
        }
        let empty = (out.files.len(), stack.len()) == before;
        if empty
            && let Some(rel) = prefix
                .strip_suffix('/')
                .and_then(|p| names::validate(p).ok())
        {
            out.empty_dirs.push(rel);
        }
    }
    Ok(out)
}
