//! WebDAV locks (stub).

/// The locks held.
#[derive(Default)]
pub struct Locks {}
