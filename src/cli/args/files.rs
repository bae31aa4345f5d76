//! The flags of `taojie put`, `get` and `ls`, and the files client options they make.
use std::path::PathBuf;

use clap::Args;

use crate::files::retry::RetryOpts;
use crate::files::{ClientOpts, GetOptions, LsOptions, PutOptions, ShareOptions};
use crate::secure::flags::ClientKeyArgs;

/// Flags for surviving a bad network.
#[derive(Args, Debug, Clone)]
pub struct RetryArgs {
    /// Reconnect and resume up to N times per file when the connection breaks (reset, cut,
    /// timed out); 0 never retries. Waits 0.5 s, 1 s, 2 s... (at most 10 s, with jitter)
    /// between attempts: the default 5 rides out about 15 s of outage. Never retried:
    /// refusals (wrong key, no such file, no space) and a first connection that is refused or
    /// reset (a wrong address). A first connection that times out or finds no route is
    /// retried.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Count a connection as broken (and retry) once no byte has moved on it for SECS: a link
    /// that went down, a dead peer; also bounds connecting
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = crate::flags::positive_secs)]
    pub timeout: f64,
}

impl From<RetryArgs> for RetryOpts {
    fn from(a: RetryArgs) -> Self {
        RetryOpts {
            retries: a.retries,
            timeout: a.timeout,
        }
    }
}

/// Flags every client shares.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Key flags
    #[command(flatten)]
    pub keys: ClientKeyArgs,
    /// No progress bar and no summary; errors only
    #[arg(long, short)]
    pub quiet: bool,
    /// One JSON report on standard output instead of the summary
    #[arg(long)]
    pub json: bool,
    /// --retries, --timeout
    #[command(flatten)]
    pub retry: RetryArgs,
    /// Connect through a proxy: socks5://, socks5h:// (names resolved by the proxy) or
    /// http:// (CONNECT), with USER:PASSWORD@ if it asks (never printed)
    #[arg(long, value_name = "URL")]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

impl From<ClientArgs> for ClientOpts {
    fn from(a: ClientArgs) -> Self {
        ClientOpts {
            key: a.keys.key,
            identity: a.keys.identity,
            quiet: a.quiet,
            json: a.json,
            retry: a.retry.into(),
            proxy: a.proxy,
        }
    }
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
    #[arg(value_parser = crate::addr::host_port)]
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
    pub opts: ClientArgs,
}

impl From<PutArgs> for PutOptions {
    fn from(a: PutArgs) -> Self {
        PutOptions {
            addr: a.addr,
            files: a.files,
            to: a.to,
            overwrite: a.overwrite,
            no_resume: a.no_resume,
            opts: a.opts.into(),
        }
    }
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
    #[arg(value_parser = crate::addr::host_port)]
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
    pub opts: ClientArgs,
}

impl From<GetArgs> for GetOptions {
    fn from(a: GetArgs) -> Self {
        GetOptions {
            addr: a.addr,
            names: a.names,
            output: a.output,
            overwrite: a.overwrite,
            opts: a.opts.into(),
        }
    }
}

/// `taojie ls ADDR [DIR]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie ls 127.0.0.1:9021
  taojie ls 127.0.0.1:9021 backup/2026 --json")]
pub struct LsArgs {
    /// Server address
    #[arg(value_parser = crate::addr::host_port)]
    pub addr: String,
    /// Directory on the server (default: its root)
    #[arg(default_value = "")]
    pub dir: String,
    /// Key flags
    #[command(flatten)]
    pub keys: ClientKeyArgs,
    /// JSON output
    #[arg(long)]
    pub json: bool,
    /// Connect through a proxy: socks5://, socks5h:// or http://, with USER:PASSWORD@ if
    /// it asks (never printed)
    #[arg(long, value_name = "URL")]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

impl From<LsArgs> for LsOptions {
    fn from(a: LsArgs) -> Self {
        LsOptions {
            addr: a.addr,
            dir: a.dir,
            key: a.keys.key,
            identity: a.keys.identity,
            json: a.json,
            proxy: a.proxy,
        }
    }
}

/// `taojie share ADDR NAME [--expires DURATION]`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:
  taojie share 127.0.0.1:9081 report.pdf                     valid for a day
  taojie share files.example:9081 photos/2026 --expires 7d   a folder, for a week
  taojie share 10.0.0.2:9081 big.iso --expires 2h --key /etc/taojie/key

The link is signed with the server's key: no server is asked, and it stays valid across
restarts until it expires; a new key revokes every link. It reaches NAME (and, for a
folder, what is below it) read-only, and nothing else.")]
pub struct ShareArgs {
    /// The address of the files page (`serve files --web ADDR`) as others will reach it
    pub addr: String,
    /// File or folder on the server, from its root ("" or / for the whole root)
    pub name: String,
    /// How long the link works: a number and s, m, h, d or w (default 1d)
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = crate::files::web::share::parse_duration)]
    pub expires: u64,
    /// The server's shared key file (default: taojie's own key)
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// The server's identity key (`serve files --identity FILE`)
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl From<ShareArgs> for ShareOptions {
    fn from(a: ShareArgs) -> Self {
        ShareOptions {
            addr: a.addr,
            name: a.name,
            expires: a.expires,
            key: a.key,
            identity: a.identity,
        }
    }
}
