//! The key flags every keyed command shares, and from them to what a client proves and what
//! a server accepts, with the same rules and messages for every service: a shared key
//! (`--key`) or identity keys (`--identity`, and `--authorized` on servers), and no key only
//! when asked for on loopback.
//!
//! [`ServerKeyArgs`] and [`ClientKeyArgs`] are the flags, flattened into each command's
//! (one definition of their names, values and which go together; a command whose wording
//! says more, such as "encrypt the pipe", changes the help text where it flattens them).
//! [`ServerKeys`] and [`ClientKeys`] are the same as plain values, which services take.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use tracing::warn;

use super::{Authorized, ClientAuth, Identity, KnownHosts, ServerAuth};
use crate::auth::{self, Key};

/// A server's key flags: `--key`, or `--identity` with `--authorized`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerKeyArgs {
    /// Shared key file; clients must prove they hold the same key
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The server's identity key pair (`taojie keygen --identity FILE`), for clients that
    /// come with identity keys; needs --authorized
    #[arg(long, value_name = "FILE", requires = "authorized")]
    pub identity: Option<PathBuf>,
    /// The client public keys let in (`taojie-x25519 BASE64 COMMENT` lines; re-read on SIGHUP)
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub authorized: Option<PathBuf>,
}

impl ServerKeyArgs {
    /// The keys these flags name; `insecure_no_auth` is the command's `--insecure-no-auth`
    /// (false where it has none).
    pub fn keys(self, insecure_no_auth: bool) -> ServerKeys {
        ServerKeys {
            key: self.key,
            identity: self.identity,
            authorized: self.authorized,
            insecure_no_auth,
        }
    }
}

/// What a server accepts, as plain values: a shared key file, or an identity key pair with
/// the client keys let in; or no key at all, when asked for (loopback only).
#[derive(Debug, Clone, Default)]
pub struct ServerKeys {
    /// The shared key file.
    pub key: Option<PathBuf>,
    /// The server's identity key pair.
    pub identity: Option<PathBuf>,
    /// The client public keys let in (with `identity`).
    pub authorized: Option<PathBuf>,
    /// Serve without a key (allowed on loopback addresses only).
    pub insecure_no_auth: bool,
}

impl ServerKeys {
    /// Whether a key or an identity is given.
    pub fn any(&self) -> bool {
        self.key.is_some() || self.identity.is_some()
    }

    /// What the server accepts on `addrs`, loaded and checked (see [`server_auth`]).
    pub fn auth(&self, service: &str, addrs: &[SocketAddr]) -> Result<ServerAuth> {
        server_auth(
            service,
            self.key.as_deref(),
            self.identity.as_deref(),
            self.authorized.as_deref(),
            self.insecure_no_auth,
            addrs,
        )
    }
}

/// A client's key flags: `--key` or `--identity`.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientKeyArgs {
    /// Shared key file (default: taojie's own key, if it exists)
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub key: Option<PathBuf>,
    /// Your identity key (`taojie keygen --identity FILE`); the server must list FILE.pub
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl From<ClientKeyArgs> for ClientKeys {
    fn from(a: ClientKeyArgs) -> Self {
        ClientKeys {
            key: a.key,
            identity: a.identity,
        }
    }
}

/// What a client proves, as plain values: a shared key file or an identity key.
#[derive(Debug, Clone, Default)]
pub struct ClientKeys {
    /// The shared key file.
    pub key: Option<PathBuf>,
    /// The client's identity key.
    pub identity: Option<PathBuf>,
}

impl ClientKeys {
    /// Whether a key or an identity is given.
    pub fn any(&self) -> bool {
        self.key.is_some() || self.identity.is_some()
    }

    /// What the client proves to the server at `address` (see [`client_auth`]).
    pub fn auth(&self, no_key: NoKey, address: &str) -> Result<ClientAuth> {
        client_auth(
            self.key.as_deref(),
            self.identity.as_deref(),
            no_key,
            address,
        )
    }
}

/// What a client does when given neither `--key` nor `--identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKey {
    /// `--insecure-no-auth` was given: no key, for a server started without one.
    Insecure,
    /// taojie's own key file (the one `taojie serve` made) if it exists, else an error.
    DefaultOrRefuse,
    /// taojie's own key file if it exists, else no key.
    DefaultOrNone,
}

/// What a client's flags ask for; `address` is the server's as the user gave it (the name
/// its identity key is pinned under).
pub fn client_auth(
    key: Option<&Path>,
    identity: Option<&Path>,
    no_key: NoKey,
    address: &str,
) -> Result<ClientAuth> {
    match (key, identity) {
        (Some(_), Some(_)) => bail!("give --key or --identity, not both"),
        (Some(path), None) => return Ok(ClientAuth::Psk(Key::load(path)?)),
        (None, Some(path)) => {
            return Ok(ClientAuth::Identity {
                id: Identity::load(path)?,
                known: KnownHosts::default_file()?,
                address: address.to_string(),
            });
        }
        (None, None) => {}
    }
    if no_key == NoKey::Insecure {
        return Ok(ClientAuth::None);
    }
    if let Ok(default) = auth::default_path()
        && default.exists()
    {
        return Ok(ClientAuth::Psk(Key::load(&default)?));
    }
    if no_key == NoKey::DefaultOrNone {
        return Ok(ClientAuth::None);
    }
    bail!("{}", no_key_advice(None, true))
}

/// What every client without a key is told: the key flags to give (those the server takes,
/// when its banner said), and `--insecure-no-auth` where the command has that flag and the
/// server may be one started without a key.
pub fn no_key_advice(offered: Option<&[super::Mode]>, insecure_flag: bool) -> String {
    use super::Mode;
    let key = "--key FILE (the server's shared key)";
    let id = "--identity FILE (yours, from `taojie keygen --identity`)";
    let takes = |m: Mode| offered.is_none_or(|o| o.contains(&m));
    let ways: Vec<&str> = [(Mode::Psk, key), (Mode::Xx, id)]
        .into_iter()
        .filter(|(m, _)| takes(*m))
        .map(|(_, w)| w)
        .collect();
    let mut line = format!("no key: give {}", ways.join(" or "));
    if insecure_flag && offered.is_none() {
        line.push_str(", or --insecure-no-auth for a server started without one");
    }
    line
}

/// What a server's flags accept, listening on `addrs`. `service` names it in messages.
/// `--identity` and `--authorized` go together; no key at all is allowed only with
/// `insecure` on loopback addresses, and said loudly. The authorized keys are re-read on
/// SIGHUP.
pub fn server_auth(
    service: &str,
    key: Option<&Path>,
    identity: Option<&Path>,
    authorized: Option<&Path>,
    insecure: bool,
    addrs: &[SocketAddr],
) -> Result<ServerAuth> {
    let mut auth = ServerAuth::default();
    if let Some(path) = key {
        auth.psk = Some(Key::load(path)?);
    }
    match (identity, authorized) {
        (Some(id), Some(list)) => {
            let authorized = Authorized::load(list)?;
            authorized.reload_on_sighup()?;
            auth.identity = Some((Identity::load(id)?, authorized));
        }
        (Some(_), None) => bail!("--identity needs --authorized FILE (the client keys let in)"),
        (None, Some(_)) => bail!("--authorized needs --identity FILE (the server's own key pair)"),
        (None, None) => {}
    }
    if auth.psk.is_some() || auth.identity.is_some() {
        if insecure {
            bail!("--insecure-no-auth cannot be combined with --key or --identity");
        }
        return Ok(auth);
    }
    if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to run {service} without a key on {open} (--insecure-no-auth is accepted \
             on loopback addresses only)"
        );
    }
    if !insecure {
        bail!(
            "{service} needs --key FILE (make one with `taojie keygen FILE`), or --identity FILE \
             with --authorized FILE, or --insecure-no-auth on a loopback address"
        );
    }
    for a in addrs {
        eprintln!(
            "taojie: WARNING: {service} on {a} has NO AUTHENTICATION (--insecure-no-auth): any \
             local user or program that can connect is served as you"
        );
        warn!(addr = %a, "{service} is running without authentication");
    }
    auth.open = true;
    Ok(auth)
}

/// Checks a classic (seed-protocol) listener on `addr` can run with `auth` — the seed's HMAC
/// challenge needs the shared key, unless the server was started without any key — and says
/// once, at start, that beyond loopback its traffic is in the clear.
pub fn check_classic(service: &str, auth: &ServerAuth, addr: SocketAddr) -> Result<()> {
    if auth.psk.is_none() && !auth.open {
        bail!("--classic needs --key FILE: the seed's HMAC challenge uses the shared key");
    }
    if !addr.ip().is_loopback() {
        warn!(
            %addr,
            "{service}-classic speaks the seed's protocol: after the HMAC check its traffic is \
             NOT encrypted and anyone on the network path can read it"
        );
    }
    Ok(())
}
