//! Resolving a relative name beneath a directory descriptor, by the kernel, in one step:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`. No component may be a symbolic link
//! (the open fails with `ELOOP`) nor climb out (`..`, an absolute link: `EXDEV`), and the
//! kernel checks this during the lookup itself, so a directory swapped for a link at any
//! moment makes the open fail instead of leading elsewhere.
//!
//! Kernels before 5.6 have no openat2 (and some sandboxes refuse it with `EPERM`): there the
//! same rule is kept by walking the name a component at a time, each opened with `openat` and
//! `O_NOFOLLOW` relative to the directory descriptor before it. Names reaching this module are
//! already validated (no `.`, `..` or empty component), which the walk checks again.
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Set once openat2 turned out to be missing, so later opens go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `name` (a validated relative name, `/`-separated) beneath `dir` with `flags` (and
/// `mode` when creating), never through a symbolic link.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        // EAGAIN: a rename raced a lookup the kernel could not vouch for; asking again is
        // what openat2(2) says to do.
        for _ in 0..8 {
            match rustix::fs::openat2(dir, name, flags, mode, how) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS | Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                // A link opened with O_DIRECTORY | O_NOFOLLOW says ENOTDIR: the walk (as safe)
                // tells a link from a file in the way.
                Err(Errno::NOTDIR) => break,
                other => return other.map_err(explain),
            }
        }
    }
    walk(dir, name, flags, mode)
}

/// The walk a kernel without openat2 gets: every directory on the way opened relative to
/// the one before, none followed if it is a link. Public to the store for its tests.
pub(super) fn walk(
    dir: BorrowedFd<'_>,
    name: &str,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.iter().any(|p| matches!(*p, "" | "." | "..")) {
        return Err(explain(Errno::XDEV));
    }
    let (last, ancestors) = parts.split_last().expect("split gives one part at least");
    let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut held: Option<OwnedFd> = None;
    for part in ancestors {
        let at = held.as_ref().map_or(dir, AsFd::as_fd);
        let next = rustix::fs::openat(at, *part, step, Mode::empty());
        held = Some(next.map_err(|e| link_or(e, at, part))?);
    }
    let at = held.as_ref().map_or(dir, AsFd::as_fd);
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(at, *last, flags, mode).map_err(|e| link_or(e, at, last))
}

/// `openat` with `O_NOFOLLOW | O_DIRECTORY` says `ENOTDIR` for a link: told apart here, so
/// the walk refuses a link as openat2 does.
fn link_or(e: Errno, at: BorrowedFd<'_>, part: &str) -> io::Error {
    let is_link = || {
        rustix::fs::statat(at, part, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink())
    };
    match e {
        Errno::NOTDIR if is_link() => explain(Errno::LOOP),
        e => explain(e),
    }
}

/// Why a name was not opened: a symbolic link on its way, or a way out of the directory.
#[derive(Debug, thiserror::Error)]
#[error("the name leads through a symbolic link or out of the root (never followed)")]
pub struct NotBeneath;

impl NotBeneath {
    /// Whether `e` is this refusal (not, say, a directory the process may not read).
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<NotBeneath>())
    }
}

/// The refusal for a symbolic link on the way, as [`NotBeneath`] (of kind `PermissionDenied`);
/// other errors as they are.
pub fn explain(e: Errno) -> io::Error {
    match e {
        Errno::LOOP | Errno::XDEV => io::Error::new(io::ErrorKind::PermissionDenied, NotBeneath),
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn open_dir(path: &std::path::Path) -> OwnedFd {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open(path, flags, Mode::empty()).unwrap()
    }

    #[test]
    fn links_are_never_followed_by_either_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), b"in").unwrap();
        std::fs::write(tmp.path().join("out"), b"out").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink("d", root.join("inside")).unwrap();
        std::os::unix::fs::symlink("f", root.join("d/g")).unwrap();
        let fd = open_dir(&root);
        let read = OFlags::RDONLY;
        for opener in [open_beneath, walk] {
            assert!(opener(fd.as_fd(), "d/f", read, Mode::empty()).is_ok());
            for name in ["up/out", "inside/f", "d/g", "up"] {
                let e = opener(fd.as_fd(), name, read, Mode::empty()).unwrap_err();
                assert!(NotBeneath::is(&e), "{name}: {e}");
            }
        }
        for name in ["../out", "d/../../out", "/etc/passwd", "d//f"] {
            assert!(
                walk(fd.as_fd(), name, read, Mode::empty()).is_err(),
                "{name}"
            );
        }
    }
}
