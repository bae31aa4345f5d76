//! The flags of `taojie serve files`, and the service's options they make.
use std::path::PathBuf;

use clap::Args;

use crate::files;
use crate::secure::flags::ServerKeyArgs;
use crate::server::{LimitArgs, PreAuthArgs};

/// Flags of `taojie serve files`.
#[derive(Args, Debug, Clone, Default)]
pub struct FilesArgs {
    /// TCP address to listen on (default 127.0.0.1:9021)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: Option<String>,
    /// Directory uploads land in and downloads come from (default: taojie's data directory)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Key flags
    #[command(flatten)]
    pub keys: ServerKeyArgs,
    /// Serve downloads and listings only; refuse uploads
    #[arg(long, conflicts_with = "upload_only")]
    pub read_only: bool,
    /// Accept uploads only; refuse downloads and listings
    #[arg(long)]
    pub upload_only: bool,
    /// Also accept the seed's classic upload (length + JSON header + bytes) on this address
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub classic: Option<String>,
    /// Also serve the files to browsers and WebDAV clients on this address: a page that
    /// browses, uploads (resumable, in chunks), downloads folders as archives and makes share
    /// links, and WebDAV at /dav/ (with a key: the login URL printed at start)
    #[arg(long, value_name = "ADDR")]
    pub web: Option<String>,
    /// Largest upload chunk the page sends in one request, a multiple of 4M (default 8M)
    #[arg(long, value_name = "BYTES", value_parser = files::web::chunk_size, requires = "web")]
    pub web_chunk: Option<u64>,
    /// Run without a key (loopback addresses only): anyone who can connect may read and write
    #[arg(long, conflicts_with_all = ["key", "identity"])]
    pub insecure_no_auth: bool,
    /// Connection limits
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Limits on connections that have not proven their key yet
    #[command(flatten)]
    pub preauth: PreAuthArgs,
}

impl From<FilesArgs> for files::ServeOptions {
    fn from(a: FilesArgs) -> Self {
        files::ServeOptions {
            listen: a.listen,
            root: a.root,
            keys: a.keys.keys(a.insecure_no_auth),
            read_only: a.read_only,
            upload_only: a.upload_only,
            classic: a.classic,
            web: a.web,
            web_chunk: a.web_chunk,
            limits: a.limits.to_limits().into(),
            preauth: a.preauth.caps().into(),
        }
    }
}
