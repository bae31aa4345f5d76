//! A receiver's disk that cannot hold a file: the error both ends show, and what is kept.
use std::io;

use crate::files::progress::human;

/// The receiver's disk cannot hold a file: the error inside an [`io::ErrorKind::StorageFull`]
/// from [`Partial::open`](super::partial::Partial::open) and from a write that ran out of room, with what is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSpace {
    /// What did not fit, for a person: sizes and free space, no paths.
    pub detail: String,
    /// Verified bytes kept beside the target for a later resume (0: nothing kept).
    pub kept: u64,
}

impl std::fmt::Display for NoSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no space left ({})", self.detail)
    }
}

impl std::error::Error for NoSpace {}

impl NoSpace {
    /// The [`NoSpace`] inside `e`, if `e` is one.
    pub fn of(e: &io::Error) -> Option<&NoSpace> {
        e.get_ref().and_then(|i| i.downcast_ref::<NoSpace>())
    }

    /// Whether `e` is the disk (or the user's quota) running out.
    pub fn is_full(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::StorageFull
            || e.kind() == io::ErrorKind::QuotaExceeded
            || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
    }

    /// `self` as the error [`NoSpace::of`] finds again.
    pub fn into_error(self) -> io::Error {
        io::Error::new(io::ErrorKind::StorageFull, self)
    }
}

/// The refusal for a file of `need` more bytes (after `offset` already held) where `free`
/// are free, keeping `kept` verified bytes.
pub(super) fn no_space(need: u64, free: u64, offset: u64, kept: u64) -> io::Error {
    let more = if offset > 0 { " more" } else { "" };
    let (mut need_s, mut free_s) = (human(need), human(free));
    if need_s == free_s {
        // Rounded alike: the difference is in the bytes.
        (need_s, free_s) = (format!("{need} bytes"), format!("{free} bytes"));
    }
    NoSpace {
        detail: format!("needs {need_s}{more}, {free_s} free"),
        kept,
    }
    .into_error()
}
