//! Making a folder, moving or renaming, removing: what the page's buttons do, each refused
//! unless the service's mode allows it (`--read-only` allows none, `--upload-only` only new
//! folders).
use std::sync::Arc;

use hyper::StatusCode;
use tracing::info;

use super::Web;
use super::access::Mode;
use super::body::io_reply;
use super::body::{Reply, plain};
use super::disk::blocking;
use crate::files::names::{self, RelName};

/// `POST /DIR?mkdir`.
pub async fn mkdir(web: &Arc<Web>, mode: Mode, name: RelName) -> Reply {
    if !mode.writes() {
        return plain(StatusCode::FORBIDDEN, "this server is read-only\n");
    }
    let root = web.state.root.clone();
    let n = name.clone();
    match blocking(move || root.make_dir(&n)).await {
        Ok(()) => {
            info!(name = %name, "folder made");
            plain(StatusCode::CREATED, "made\n")
        }
        Err(e) => io_reply(&e),
    }
}

/// `POST /NAME?move=TO`: `TO` is a path from the root (a leading `/` is allowed).
pub async fn rename(web: &Arc<Web>, mode: Mode, from: RelName, to: String, replace: bool) -> Reply {
    if !mode.edits() {
        return plain(StatusCode::FORBIDDEN, refusal(mode));
    }
    let to = match names::validate(to.trim_start_matches('/')) {
        Ok(n) => n,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("name refused: {e}\n")),
    };
    let root = web.state.root.clone();
    let (a, b) = (from.clone(), to.clone());
    match blocking(move || root.rename(&a, &b, replace)).await {
        Ok(()) => {
            info!(from = %from, to = %to, "moved");
            plain(StatusCode::OK, "moved\n")
        }
        Err(e) => io_reply(&e),
    }
}

/// `DELETE /NAME`.
pub async fn delete(web: &Arc<Web>, mode: Mode, name: RelName) -> Reply {
    if !mode.edits() {
        return plain(StatusCode::FORBIDDEN, refusal(mode));
    }
    let root = web.state.root.clone();
    let n = name.clone();
    match blocking(move || root.remove(&n)).await {
        Ok(()) => {
            info!(name = %name, "removed");
            plain(StatusCode::OK, "removed\n")
        }
        Err(e) => io_reply(&e),
    }
}

fn refusal(mode: Mode) -> &'static str {
    match mode {
        Mode::UploadOnly => "this server is upload-only: nothing is moved or removed\n",
        _ => "this server is read-only\n",
    }
}
