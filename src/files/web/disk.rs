//! The store's calls made off the async workers: every one may wait on the disk.
use std::io;

use super::Web;
use crate::files::names::RelName;

/// What `name` is, asked off the async workers.
pub async fn stat(web: &Web, name: Option<RelName>) -> io::Result<crate::files::store::Entry> {
    let root = web.state.root.clone();
    blocking(move || root.stat(name.as_ref())).await
}

/// Runs a blocking store call on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}
