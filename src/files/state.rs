//! What every files connection handler shares, native or classic: the canonical root, the key
//! and the read/upload-only switches, checked once from the flags before anything listens.
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tracing::warn;

use super::ServeArgs;
use crate::auth::{self, Key};

/// Everything a connection handler needs.
pub struct State {
    /// The root, canonical.
    pub root: PathBuf,
    /// The key, or None when explicitly run without one.
    pub key: Option<Key>,
    /// Refuse uploads.
    pub read_only: bool,
    /// Refuse downloads and listings.
    pub upload_only: bool,
}

impl State {
    /// The state `args` asks for, serving on `addr` (and `classic`, if set): loads the key,
    /// or allows none only when every address is loopback, and makes sure the root (by
    /// default taojie's data directory) is a directory.
    pub fn from_args(
        args: &ServeArgs,
        addr: SocketAddr,
        classic: Option<SocketAddr>,
    ) -> Result<State> {
        let key = match (&args.key, args.insecure_no_auth) {
            (Some(path), _) => Some(Key::load(path)?),
            (None, true) => {
                let all_loopback =
                    addr.ip().is_loopback() && classic.is_none_or(|a| a.ip().is_loopback());
                if !all_loopback {
                    bail!("--insecure-no-auth is only allowed on loopback addresses");
                }
                warn!(
                    "files: running WITHOUT authentication: anyone who can connect to {addr} may read and write under the root"
                );
                None
            }
            (None, false) => {
                bail!("serve files needs --key FILE (or --insecure-no-auth on loopback)")
            }
        };
        let root = match &args.root {
            Some(r) => r.clone(),
            None => {
                let dir = auth::default_path()?.with_file_name("files");
                std::fs::create_dir_all(&dir)?;
                dir
            }
        };
        let root = root
            .canonicalize()
            .with_context(|| format!("root {}", root.display()))?;
        if !root.is_dir() {
            bail!("root {} is not a directory", root.display());
        }
        Ok(State {
            root,
            key,
            read_only: args.read_only,
            upload_only: args.upload_only,
        })
    }
}
