//! A folder's listing as JSON for the page (`GET /DIR/?json`), and a search of the names
//! below it (`?search=TEXT`). Both read the store off the async workers; a listing of 100,000
//! names is one pass over the directory and one `fstatat` per name.
use std::io;
use std::sync::Arc;

use hyper::StatusCode;
use serde::Serialize;

use super::Web;
use super::access::Mode;
use super::access::Scope;
use super::body::io_reply;
use super::body::{Reply, json};
use super::disk::blocking;
use crate::files::names::RelName;
use crate::files::store::visit::Flow;
use crate::files::store::{Entry, Kind};

/// Most names a search returns.
pub const MAX_FOUND: usize = 1000;
/// Most entries a search looks at before it gives up.
const MAX_LOOKED: usize = 2_000_000;

/// One name as the page shows it.
#[derive(Serialize)]
struct Item {
    /// The name in its folder, or the path below the searched folder.
    name: String,
    kind: &'static str,
    size: u64,
    /// Milliseconds since the Unix epoch.
    mtime: i64,
}

impl Item {
    fn of(name: String, e: &Entry) -> Item {
        Item {
            name,
            kind: e.kind.as_str(),
            size: e.size,
            mtime: e.mtime_ns.div_euclid(1_000_000),
        }
    }
}

/// The listing.
#[derive(Serialize)]
struct Listing {
    /// The URL prefix of the scope (`/`, or a share link's).
    base: String,
    /// The folder, relative to the scope's top.
    path: String,
    /// `rw`, `ro` or `upload`.
    mode: &'static str,
    /// Whether share links can be made (the server has a key, and this is no share link).
    share: bool,
    /// Largest upload chunk.
    chunk: u64,
    entries: Vec<Item>,
}

/// `GET /DIR/?json`.
pub async fn reply(
    web: &Arc<Web>,
    scope: &Scope,
    mode: Mode,
    dir: Option<RelName>,
    shown: Option<RelName>,
) -> Reply {
    let root = web.state.root.clone();
    let listed = blocking(move || root.list(dir.as_ref())).await;
    match listed {
        Ok(entries) => json(
            StatusCode::OK,
            &Listing {
                base: scope.prefix().to_string(),
                path: shown.map_or(String::new(), |n| n.as_str().to_string()),
                mode: mode.as_str(),
                share: web.token.is_some() && matches!(scope, Scope::Full),
                chunk: web.chunk,
                entries: entries
                    .into_iter()
                    .map(|e| Item::of(e.name.clone(), &e))
                    .collect(),
            },
        ),
        Err(e) => io_reply(&e),
    }
}

/// What a search found.
#[derive(Serialize)]
struct Found {
    base: String,
    path: String,
    query: String,
    /// Paths below the searched folder.
    entries: Vec<Item>,
    /// More matched than [`MAX_FOUND`], or the walk stopped early.
    truncated: bool,
}

/// `GET /DIR/?search=TEXT`: names below the folder containing TEXT, case-insensitive.
pub async fn search(
    web: &Arc<Web>,
    scope: &Scope,
    dir: Option<RelName>,
    shown: Option<RelName>,
    text: String,
) -> Reply {
    let root = web.state.root.clone();
    let needle = text.to_lowercase();
    let walked = blocking(move || -> io::Result<(Vec<Item>, bool)> {
        let (mut found, mut looked, mut truncated) = (Vec::new(), 0usize, false);
        root.walk(dir.as_ref(), &mut |v| {
            looked += 1;
            if looked > MAX_LOOKED {
                truncated = true;
                return Ok(Flow::Stop);
            }
            if !needle.is_empty() && v.entry.name.to_lowercase().contains(&needle) {
                if found.len() == MAX_FOUND {
                    truncated = true;
                    return Ok(Flow::Stop);
                }
                found.push(Item::of(v.rel.to_string(), v.entry));
            }
            Ok(if v.entry.kind == Kind::Dir {
                Flow::Go
            } else {
                Flow::Skip
            })
        })?;
        Ok((found, truncated))
    })
    .await;
    match walked {
        Ok((entries, truncated)) => json(
            StatusCode::OK,
            &Found {
                base: scope.prefix().to_string(),
                path: shown.map_or(String::new(), |n| n.as_str().to_string()),
                query: text,
                entries,
                truncated,
            },
        ),
        Err(e) => io_reply(&e),
    }
}
