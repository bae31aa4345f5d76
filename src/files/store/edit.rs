//! Changing the tree beneath the root, for the page and WebDAV: what a name is, making a
//! directory, removing a file or a whole directory, moving a name. Each works on the parent
//! directory's descriptor, opened beneath the root; a tree is removed through descriptors of
//! its own directories, its links removed as links and never followed.
use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::resolve::explain;
use super::walk::{entry_in, entry_of};
use super::{Dir, Entry, Root};
use crate::files::names::RelName;

impl Root {
    /// The directory holding `name`, and `name`'s last component.
    pub fn parent_of<'n>(&self, name: &'n RelName) -> io::Result<(Dir, &'n str)> {
        let s = name.as_str();
        match s.rsplit_once('/') {
            None => Ok((self.top().clone(), s)),
            Some((parent, last)) => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY;
                let dir = Dir::from_fd(self.beneath(parent, flags, 0)?);
                Ok((dir, last))
            }
        }
    }

    /// What `name` is (the root itself for `None`, named `""`); a link is reported as a link.
    pub fn stat(&self, name: Option<&RelName>) -> io::Result<Entry> {
        match name {
            None => {
                let st = rustix::fs::fstat(self.top().fd())?;
                Ok(entry_of(String::new(), &st))
            }
            Some(n) => {
                let (dir, last) = self.parent_of(n)?;
                entry_in(&dir, last.to_string())?
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
            }
        }
    }

    /// Makes the directory `name`; its parent must exist (`NotFound` otherwise), and nothing
    /// may be there yet (`AlreadyExists`).
    pub fn make_dir(&self, name: &RelName) -> io::Result<()> {
        let (dir, last) = self.parent_of(name)?;
        rustix::fs::mkdirat(dir.fd().as_fd(), last, Mode::from_raw_mode(0o777)).map_err(explain)
    }

    /// Removes `name`: a file (or link, or anything that is not a directory) by unlinking it,
    /// a directory with everything in it.
    pub fn remove(&self, name: &RelName) -> io::Result<()> {
        let (dir, last) = self.parent_of(name)?;
        match dir.kind_of(last)? {
            None => Err(io::ErrorKind::NotFound.into()),
            Some(FileType::Directory) => {
                remove_tree(dir.subdir(last)?)?;
                dir.remove_dir(last)
            }
            Some(_) => dir.remove(last),
        }
    }

    /// Moves `from` to `to` (in the same or another directory beneath the root). Something
    /// already at `to` is replaced only with `replace` (a directory there is removed first,
    /// with its contents); otherwise the move fails with `AlreadyExists`.
    pub fn rename(&self, from: &RelName, to: &RelName, replace: bool) -> io::Result<()> {
        let (src, a) = self.parent_of(from)?;
        let (dst, b) = self.parent_of(to)?;
        if src.kind_of(a)?.is_none() {
            return Err(io::ErrorKind::NotFound.into());
        }
        if replace && to.as_str().starts_with(&format!("{}/", from.as_str())) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder cannot move into itself",
            ));
        }
        if replace && let Some(kind) = dst.kind_of(b)? {
            match kind {
                FileType::Directory => {
                    remove_tree(dst.subdir(b)?)?;
                    dst.remove_dir(b)?;
                }
                _ => return dst.move_here(&src, a, b, true),
            }
        }
        dst.move_here(&src, a, b, false)
    }
}

/// Empties the directory `top` (held open): every entry removed, subdirectories first
/// emptied through their own descriptors (opened without following links).
fn remove_tree(top: Dir) -> io::Result<()> {
    // (directory, its name in the directory below it on the stack)
    let mut stack: Vec<(Dir, Option<CString>)> = vec![(top, None)];
    while let Some((dir, _)) = stack.last() {
        let dir = dir.clone();
        let mut deeper = None;
        for entry in rustix::fs::Dir::read_from(dir.fd())? {
            let entry = entry?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let st = match rustix::fs::statat(dir.fd().as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir.fd().as_fd(), name, flags, Mode::empty())
                    .map_err(explain)?;
                deeper = Some((Dir::from_fd(fd), name.to_owned()));
                break;
            }
            match rustix::fs::unlinkat(dir.fd().as_fd(), name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match deeper {
            Some((sub, name)) => stack.push((sub, Some(name))),
            None => {
                let (_, name) = stack.pop().expect("the loop looked at it");
                if let (Some(name), Some((parent, _))) = (name, stack.last()) {
                    rustix::fs::unlinkat(parent.fd().as_fd(), name.as_c_str(), AtFlags::REMOVEDIR)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::names::validate;

    fn n(s: &str) -> RelName {
        validate(s).unwrap()
    }

    #[test]
    fn a_tree_goes_whole_and_a_link_in_it_leaves_its_target_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("d/e/f")).unwrap();
        std::fs::write(root.join("d/e/f/x"), b"x").unwrap();
        std::fs::write(root.join("d/.y.taojie-part"), b"y").unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/keep"), b"k").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("d/out")).unwrap();
        let r = Root::open(&root).unwrap();
        r.remove(&n("d")).unwrap();
        assert!(!root.join("d").exists());
        assert!(tmp.path().join("outside/keep").exists());
        let e = r.remove(&n("d")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn moves_replace_only_when_asked_and_never_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f"), b"f").unwrap();
        std::fs::write(root.join("g"), b"g").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
        let r = Root::open(&root).unwrap();
        let e = r.rename(&n("g"), &n("a/f"), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        r.rename(&n("g"), &n("a/f"), true).unwrap();
        assert_eq!(std::fs::read(root.join("a/f")).unwrap(), b"g");
        assert!(r.rename(&n("a/f"), &n("up/stolen"), false).is_err());
        assert!(!tmp.path().join("stolen").exists());
        r.make_dir(&n("b")).unwrap();
        assert_eq!(
            r.make_dir(&n("b")).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(r.make_dir(&n("no/such")).is_err());
        r.rename(&n("a"), &n("b/a"), false).unwrap();
        assert_eq!(r.stat(Some(&n("b/a/f"))).unwrap().size, 1);
        assert!(r.rename(&n("b"), &n("b/a/b"), true).is_err());
    }
}
