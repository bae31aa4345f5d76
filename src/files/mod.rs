//! File transfer: `taojie serve files`, `taojie put`, `taojie get`, `taojie ls`.
//!
//! Verified (BLAKE3, checked segment by segment while the bytes stream, see [`tree`]),
//! resumable (the receiver keeps the verified segments' hashes beside the partial file, see
//! [`partial`]), atomic (a temporary file beside the target, fsync, then rename), strict about
//! names (see [`names`]), and confined: every name is resolved beneath the root's directory
//! descriptor by the kernel, never through a link, and a download is read from the descriptor
//! that was checked (see [`store`]), so no client, nor a local user racing the server, reaches
//! outside the root. `--classic` adds the seed's upload: a
//! `struct.pack('i', n)` length, a JSON header `{file_size, file_name, md5}`, then the bytes.
//!
//! The tree: [`protocol`] is the messages, [`link`] the framed connection they travel on,
//! [`send`] and [`receive`] move one file either way, and [`progress`] reports it.
//! [`client`] is `put` and `ls`, [`download`] is `get`; [`server`] binds the listeners and answers
//! native connections, [`classic`] answers classic ones, and both read the [`state`] built
//! once from the flags (so the dependency runs server → classic → state, never back); all of
//! them, and the `get` client's output directory, touch files only through [`store`].
use std::path::PathBuf;

use crate::secure::flags::ServerKeys;
use crate::server::{LiveCaps, LiveLimits};

pub mod classic;
pub mod client;
pub mod download;
pub mod interrupt;
pub mod link;
pub mod progress;
pub mod protocol;
pub mod put;
pub mod receive;
pub mod retry;
pub mod send;
pub mod server;
pub mod stall;
pub mod state;
pub mod store;
pub mod tree;
pub mod uploads;
pub mod web;

/// The names files are stored and asked for under (shared with the messenger's attachments).
pub use crate::names;
pub use client::ls;
pub use download::get;
pub use put::put;
pub use server::serve;
pub use store::partial;
pub use web::share::run as share;

/// Default port of the files service on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9021;
/// The service name in hello and in the announce lines.
pub const SERVICE: &str = "files";

/// What `files::serve` runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// TCP address to listen on (default 127.0.0.1:9021).
    pub listen: Option<String>,
    /// Directory uploads land in and downloads come from (default: taojie's data directory).
    pub root: Option<PathBuf>,
    /// The keys clients must prove (or none, on loopback only).
    pub keys: ServerKeys,
    /// Serve downloads and listings only; refuse uploads.
    pub read_only: bool,
    /// Accept uploads only; refuse downloads and listings.
    pub upload_only: bool,
    /// Also accept the seed's classic upload on this address.
    pub classic: Option<String>,
    /// Also serve the files to browsers and WebDAV clients on this address (see [`web`]).
    pub web: Option<String>,
    /// Largest upload chunk the page sends in one request (a multiple of 4 MiB; default
    /// [`web::DEFAULT_CHUNK`]).
    pub web_chunk: Option<u64>,
    /// Connection limits (every listener).
    pub limits: LiveLimits,
    /// Caps on connections still in their handshake (both listeners).
    pub preauth: LiveCaps,
}

/// What every files client shares: the key, how to report, and the retries.
#[derive(Debug, Clone, Default)]
pub struct ClientOpts {
    /// Shared key file (default: taojie's own key, if it exists).
    pub key: Option<PathBuf>,
    /// The client's identity key.
    pub identity: Option<PathBuf>,
    /// No progress bar and no summary; errors only.
    pub quiet: bool,
    /// One JSON report on standard output instead of the summary.
    pub json: bool,
    /// Reconnecting and resuming.
    pub retry: retry::RetryOpts,
    /// Connect through this proxy.
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

/// What `files::put` uploads, where to, and how.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// Server address.
    pub addr: String,
    /// Files or directories to upload.
    pub files: Vec<PathBuf>,
    /// Directory on the server to put them in (relative to its root).
    pub to: Option<String>,
    /// Replace files that already exist on the server.
    pub overwrite: bool,
    /// Start over instead of resuming, and have the server keep nothing of a file that does
    /// not arrive whole (after a full disk it otherwise keeps the verified part to resume).
    pub no_resume: bool,
    /// Key, --quiet, --json.
    pub opts: ClientOpts,
}

/// What `files::get` downloads, where to, and how.
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// Server address.
    pub addr: String,
    /// Names on the server (files or directories).
    pub names: Vec<String>,
    /// Local directory to write into (default: the current one).
    pub output: PathBuf,
    /// Replace local files that already exist.
    pub overwrite: bool,
    /// Key, --quiet, --json.
    pub opts: ClientOpts,
}

/// What `files::share` prints a link to.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// The address of the files page as others will reach it (`HOST:PORT`).
    pub addr: String,
    /// File or folder on the server, from its root ("" or / for the whole root).
    pub name: String,
    /// Seconds the link works.
    pub expires: u64,
    /// The server's shared key file (default: taojie's own key).
    pub key: Option<PathBuf>,
    /// The server's identity key, instead of a shared key.
    pub identity: Option<PathBuf>,
}

/// What `files::ls` lists, and how.
#[derive(Debug, Clone)]
pub struct LsOptions {
    /// Server address.
    pub addr: String,
    /// Directory on the server (default: its root).
    pub dir: String,
    /// Shared key file (default: taojie's own key, if it exists).
    pub key: Option<PathBuf>,
    /// Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub.
    pub identity: Option<PathBuf>,
    /// JSON output.
    pub json: bool,
    /// Connect through this proxy.
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}
