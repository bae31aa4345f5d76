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

use clap::Args;

use crate::secure::flags::ServerKeys;
use crate::server::{LiveCaps, LiveLimits};

pub mod classic;
pub mod client;
pub mod download;
pub mod link;
pub mod progress;
pub mod protocol;
pub mod receive;
pub mod retry;
pub mod send;
pub mod server;
pub mod stall;
pub mod state;
pub mod store;
pub mod tree;
pub mod uploads;

/// The names files are stored and asked for under (shared with the messenger's attachments).
pub use crate::names;
pub use client::{ls, put};
pub use download::get;
pub use server::serve;
pub use store::partial;

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
    /// Connection limits (both listeners).
    pub limits: LiveLimits,
    /// Caps on connections still in their handshake (both listeners).
    pub preauth: LiveCaps,
}

/// Flags every client shares.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientOpts {
    /// Shared key file (default: taojie's own key, if it exists)
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// No progress bar and no summary; errors only
    #[arg(long, short)]
    pub quiet: bool,
    /// One JSON report on standard output instead of the summary
    #[arg(long)]
    pub json: bool,
    /// --retries, --timeout
    #[command(flatten)]
    pub retry: retry::RetryOpts,
}

/// `taojie put ADDR FILE... [--to DIR]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie put 127.0.0.1:9021 report.pdf --key ~/.local/share/taojie/key
  taojie put 127.0.0.1:9021 photos/ --to backup/2026     a whole tree
  taojie put 127.0.0.1:9021 big.iso                       resumes by itself after a broken
                                                          connection (--retries 5), or re-run it
  taojie put 10.0.0.2:9021 big.iso --retries 20 --timeout 10   a flaky link: retry more, give
                                                          up on a dead connection after 10 s
  taojie put 127.0.0.1:9021 big.iso --no-resume           start over; on failure keep nothing")]
pub struct PutArgs {
    /// Server address
    pub addr: String,
    /// Files or directories to upload
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Directory on the server to put them in (relative to its root)
    #[arg(long, value_name = "DIR")]
    pub to: Option<String>,
    /// Replace files that already exist on the server
    #[arg(long)]
    pub overwrite: bool,
    /// Start over instead of resuming, and have the server keep nothing of a file that does
    /// not arrive whole (after a full disk it otherwise keeps the verified part to resume)
    #[arg(long)]
    pub no_resume: bool,
    /// Key, --quiet, --json
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `taojie get ADDR NAME... [-o DIR]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie get 127.0.0.1:9021 report.pdf
  taojie get 127.0.0.1:9021 backup/2026 -o restore/    a whole tree
  taojie get 127.0.0.1:9021 big.iso                     resumes by itself after a broken
                                                        connection (--retries 5), or re-run it
  taojie get 127.0.0.1:9021 big.iso --retries 0         fail at the first break")]
pub struct GetArgs {
    /// Server address
    pub addr: String,
    /// Names on the server (files or directories)
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Local directory to write into (default: the current one)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Replace local files that already exist
    #[arg(long)]
    pub overwrite: bool,
    /// Key, --quiet, --json
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `taojie ls ADDR [DIR]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie ls 127.0.0.1:9021
  taojie ls 127.0.0.1:9021 backup/2026 --json")]
pub struct LsArgs {
    /// Server address
    pub addr: String,
    /// Directory on the server (default: its root)
    #[arg(default_value = "")]
    pub dir: String,
    /// Shared key file (default: taojie's own key, if it exists)
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// JSON output
    #[arg(long)]
    pub json: bool,
}
