//! What every files connection handler shares, native or classic: the root (opened once, see
//! [`store`](super::store)), the key and the read/upload-only switches, checked once from the
//! flags before anything listens.
use std::net::SocketAddr;

use anyhow::{Context, Result};

use super::ServeOptions;
use super::store::Root;
use super::uploads::Uploads;
use crate::auth;
use crate::secure::ServerAuth;
use crate::server::PreAuth;

/// Everything a connection handler needs.
pub struct State {
    /// The root: every name is resolved beneath it.
    pub root: Root,
    /// What the handshakes accept (the classic listener's HMAC uses `auth.psk`).
    pub auth: ServerAuth,
    /// Refuse uploads.
    pub read_only: bool,
    /// Refuse downloads and listings.
    pub upload_only: bool,
    /// Caps and deadline for connections still in their handshake (both listeners').
    pub preauth: PreAuth,
    /// Native uploads under way, for a returning client to take over.
    pub uploads: Uploads,
}

impl State {
    /// The state `args` asks for, serving on `addr` (and `classic` and `web`, if set): loads the key,
    /// or allows none only when every address is loopback, and makes sure the root (by
    /// default taojie's data directory) is a directory, and opens it.
    pub fn from_args(
        args: &ServeOptions,
        addr: SocketAddr,
        classic: Option<SocketAddr>,
        web: Option<SocketAddr>,
    ) -> Result<State> {
        let addrs: Vec<SocketAddr> = std::iter::once(addr).chain(classic).chain(web).collect();
        let auth = args.keys.auth("files", &addrs)?;
        if let Some(c) = classic {
            crate::secure::flags::check_classic("files", &auth, c)?;
        }
        let root = match &args.root {
            Some(r) => r.clone(),
            None => {
                let dir = auth::default_path()?.with_file_name("files");
                std::fs::create_dir_all(&dir)?;
                dir
            }
        };
        let root = Root::open(&root).with_context(|| format!("root {}", root.display()))?;
        Ok(State {
            root,
            auth,
            read_only: args.read_only,
            upload_only: args.upload_only,
            preauth: PreAuth::live(args.preauth.clone()).for_service("files"),
            uploads: Uploads::default(),
        })
    }
}
