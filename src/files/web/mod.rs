//! The files service in a browser and in file managers (`taojie serve files --web ADDR`):
//! a page that browses, downloads (with `Range`), uploads in resumable chunks, makes, renames
//! and deletes, searches and packs folders into streamed archives; share links; and WebDAV at
//! `/dav/`. URLs mirror the tree: `/PATH/` is a folder's page, `/PATH/NAME` a file,
//! `/PATH/?archive=zip` a folder's archive. Everything is read and written through the
//! service's [`store`](super::store) and an upload through the same
//! [`Writer`](super::store::writer::Writer) as `put`'s, so the web face keeps every rule the
//! native protocol keeps: nothing outside the root, nothing half-written under a name.
//!
//! The pieces: [`http`] serves a connection and routes a request, after [`access`] has said
//! who sent it (the login token, a [`share`] link, the page's own origin) and what it may do;
//! [`path`] turns a
//! URL into a name; [`routes`] answers the tree's URLs with [`listing`], [`download`],
//! [`upload`], [`archive`] and [`edit`]; [`dav`] is WebDAV; [`page`] the page's own files
//! (built into the binary) and [`qr`] its QR codes; [`body`] the responses, [`zerocopy`] a
//! file's bytes sent with sendfile(2), and [`disk`] the store's calls off the async workers.
// A refusal is the response itself, made once per request: no gain in boxing it.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use anyhow::Result;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::state::State;
use crate::server::{self, Listener, LiveLimits};
use crate::web::Token;

pub mod access;
pub mod archive;
pub mod body;
pub mod dav;
pub mod disk;
pub mod download;
pub mod edit;
pub mod http;
pub mod listing;
pub mod page;
pub mod path;
pub mod qr;
pub mod routes;
pub mod share;
pub mod upload;
pub mod zerocopy;

/// Default port of the files page on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9081;
/// Default largest upload chunk: proxies that cap request bodies (nginx's default is 1 MiB,
/// many set 10 MiB or more) let it through.
pub const DEFAULT_CHUNK: u64 = 8 << 20;
/// Parses `--web-chunk`: a size (`8M`) that is a whole number of the tree hash's segments, so
/// every chunk but the last ends where a verified segment does.
pub fn chunk_size(s: &str) -> Result<u64, String> {
    let n = crate::flags::bytes(s)?;
    if n == 0 || !n.is_multiple_of(crate::files::tree::SEGMENT) {
        return Err(format!(
            "{n} bytes is not a multiple of 4M ({} bytes)",
            crate::files::tree::SEGMENT
        ));
    }
    Ok(n)
}

/// What the page's login token is an HMAC of, under the server's key.
pub const TOKEN_LABEL: &[u8] = b"taojie files web token";
/// The announce name.
pub const SERVICE: &str = "files-web";

/// What the web face is told besides the service's own state.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest body of one upload chunk; a multiple of the 4 MiB segment.
    pub chunk: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk: DEFAULT_CHUNK,
        }
    }
}

/// What every request of the web face shares.
pub struct Web {
    /// The service's root, key and modes.
    pub state: Arc<State>,
    /// With a keyed server: the login token, which also signs share links.
    pub token: Option<Token>,
    /// Listening on loopback: only loopback host names are answered.
    pub loopback: bool,
    /// The port, naming the login cookie (cookies do not tell ports apart).
    pub port: u16,
    /// Largest upload chunk.
    pub chunk: u64,
    /// Uploads under way from pages and WebDAV.
    pub uploads: upload::Sessions,
    /// WebDAV locks.
    pub locks: dav::lock::Locks,
    /// Cancelled when the server stops: idle connections close at once.
    pub stopping: CancellationToken,
}

/// Announces `listener` (`files-web tcp ADDR`), prints the login URL when the service has a
/// key (and warns when the page is open to the network), and returns the server to run until
/// `shutdown` is cancelled.
pub fn start(
    listener: TcpListener,
    state: Arc<State>,
    opts: &Options,
    limits: LiveLimits,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static> {
    let local = listener.local_addr()?;
    let token = Token::from_auth(&state.auth, TOKEN_LABEL);
    server::announce(SERVICE, "tcp", &local);
    crate::web::announce("files-web", "files", "the files", local, token.as_ref());
    let web = Arc::new(Web {
        state,
        token,
        loopback: local.ip().is_loopback(),
        port: local.port(),
        chunk: opts.chunk,
        uploads: upload::Sessions::default(),
        locks: dav::lock::Locks::default(),
        stopping: shutdown.clone(),
    });
    let reaper = upload::reap(web.clone(), shutdown.clone());
    let served = {
        let web = web.clone();
        server::serve_stream(
            SERVICE,
            Listener::Tcp(listener),
            limits,
            move |conn| http::connection(conn, web.clone()),
            shutdown.cancelled_owned(),
        )
    };
    Ok(async move {
        let reaping = tokio::spawn(reaper);
        served.await;
        reaping.abort();
        // What pages left half-sent is recorded, for them to resume after a restart.
        web.uploads.close_all().await;
    })
}
