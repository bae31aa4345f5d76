//! `taojie forward LISTEN TARGET`: socat's `TCP-LISTEN,fork TCP:...` done as a server.
//! Every client accepted on LISTEN gets its own connection to TARGET, and the two are relayed
//! both ways with half-close until each side has ended ([`crate::pump`]: splice(2) between
//! plain sockets on Linux, no copy through user space). LISTEN and TARGET are TCP, Unix or
//! (together) UDP ([`Endpoint`]); UDP clients each get a session of their own ([`udp`]).
//!
//! Either side can be wrapped, which makes a tunnel (the stunnel and `ssh -L` jobs): the
//! listening side in TLS (`--from-tls-cert`) or taojie's Noise channel (`--from-key`,
//! `--from-identity`), the target side in TLS (`--to-tls`, verified) or Noise (`--to-key`,
//! `--to-identity`) ([`crate::transport`]). A forward runs on the server framework: its
//! limits, graceful stop and metrics, the `forward PROTO ADDRESS` line once bound, and one
//! log line per connection with the bytes each way.
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::server::{Caps, LiveLimits};
use crate::transport::{Accept, Dial, Target, ends::Wrap};

mod endpoint;
mod stream;
pub mod udp;

pub use endpoint::Endpoint;

/// Default time to connect to the target (and finish its handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a UDP session lives with no datagram either way.
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(60);

/// The listening side's layer, as plain values: TLS, or the Noise keys a client must prove.
#[derive(Debug, Clone, Default)]
pub struct FromLayer {
    /// TLS as the server (certificate files, or one made at start).
    pub tls: crate::tls::ServerOptions,
    /// A shared key clients must prove (Noise).
    pub key: Option<PathBuf>,
    /// Our identity key pair, for clients with identity keys (Noise); with `authorized`.
    pub identity: Option<PathBuf>,
    /// The client identity keys let in.
    pub authorized: Option<PathBuf>,
}

/// The target side's layer, as plain values: TLS, or the Noise key we prove.
#[derive(Debug, Clone, Default)]
pub struct ToLayer {
    /// TLS as the client, verified as these options say.
    pub tls: Option<crate::tls::ClientOptions>,
    /// A shared key to prove (Noise).
    pub key: Option<PathBuf>,
    /// Our identity key (Noise); the target's key is pinned in known_hosts.
    pub identity: Option<PathBuf>,
    /// Reach a TCP target through this proxy (under any TLS or Noise layer).
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

/// What one forward does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where clients come in.
    pub listen: Endpoint,
    /// Where each goes.
    pub target: Endpoint,
    /// The listening side's layer.
    pub from: FromLayer,
    /// The target side's layer.
    pub to: ToLayer,
    /// Connections at once, idle timeout, grace at shutdown (UDP: sessions at once).
    pub limits: LiveLimits,
    /// Limits on clients still in their handshake (with a `from` layer).
    pub preauth: Caps,
    /// Time to connect to the target and finish its handshake.
    pub connect_timeout: Duration,
    /// Time a UDP session lives with no datagram either way.
    pub udp_timeout: Duration,
    /// The name in the announce line, the logs and the metrics (`forward`, or a
    /// configuration's own name for each of its forwards).
    pub service: &'static str,
}

impl Options {
    /// A plain forward from `listen` to `target` with default limits.
    pub fn new(listen: Endpoint, target: Endpoint) -> Options {
        Options {
            listen,
            target,
            from: FromLayer::default(),
            to: ToLayer::default(),
            limits: crate::server::Limits::default().into(),
            preauth: crate::server::PreAuthArgs::default().caps(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            udp_timeout: DEFAULT_UDP_TIMEOUT,
            service: "forward",
        }
    }
}

/// Runs one forward until `shutdown` resolves: binds LISTEN, prints `forward PROTO ADDRESS`,
/// relays every client. Errors in the options (a key that does not load, a certificate past
/// its end, UDP on one side only) come before anything is bound.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<()> {
    match (&opts.listen, &opts.target) {
        (Endpoint::Udp(listen), Endpoint::Udp(target)) => {
            if opts.from.tls.any() || opts.from.key.is_some() || opts.from.identity.is_some() {
                bail!("udp: forwards carry datagrams as they are: no --from-tls or --from-key");
            }
            if opts.to.tls.is_some() || opts.to.key.is_some() || opts.to.identity.is_some() {
                bail!("udp: forwards carry datagrams as they are: no --to-tls or --to-key");
            }
            if opts.to.proxy.is_some() {
                bail!("udp: forwards carry datagrams themselves: no --proxy");
            }
            udp::run(&opts, listen, target, shutdown).await
        }
        (Endpoint::Udp(_), _) | (_, Endpoint::Udp(_)) => bail!(
            "a udp: side forwards only to another udp: side ({} -> {})",
            opts.listen,
            opts.target
        ),
        (_, target) => {
            let target = target.stream_target().expect("not udp");
            let accept = accept(&opts).await?;
            if opts.to.proxy.is_some() && !matches!(target, Target::Tcp(_)) {
                bail!("--proxy reaches TCP targets only, not {target}");
            }
            let dial = Dial {
                target,
                wrap: wrap(&opts)?,
                wait: opts.connect_timeout,
                proxy: opts.to.proxy.clone(),
            };
            stream::run(&opts, accept, dial, shutdown).await
        }
    }
}

/// The listening side's layer, loaded and checked.
async fn accept(opts: &Options) -> Result<Accept> {
    let from = &opts.from;
    let keyed = from.key.is_some() || from.identity.is_some() || from.authorized.is_some();
    if from.tls.any() && keyed {
        bail!("give --from-tls-* or --from-key/--from-identity, not both: one layer per side");
    }
    if from.tls.any() {
        let names = match &opts.listen {
            Endpoint::Tcp(a) => vec![crate::tls::host_of(a).to_string()],
            _ => Vec::new(),
        };
        let tls = crate::tls::server_config(&from.tls, &names)?;
        if from.tls.self_signed {
            eprintln!(
                "taojie: {}: TLS certificate made for this run; clients may trust it with \
                 --pin {} (SHA-256 fingerprint {})",
                opts.service, tls.pin, tls.fingerprint
            );
        }
        return Ok(Accept::Tls(Arc::new(tls)));
    }
    if keyed {
        let addrs = match &opts.listen {
            Endpoint::Tcp(a) => crate::addr::resolve(a).await.unwrap_or_default(),
            _ => Vec::new(),
        };
        let auth = crate::secure::flags::server_auth(
            opts.service,
            from.key.as_deref(),
            from.identity.as_deref(),
            from.authorized.as_deref(),
            false,
            &addrs,
        )
        .context("--from-key/--from-identity")?;
        return Ok(Accept::Noise(Arc::new(auth)));
    }
    Ok(Accept::Plain)
}

/// The target side's layer, loaded and checked.
fn wrap(opts: &Options) -> Result<Wrap> {
    let to = &opts.to;
    let keyed = to.key.is_some() || to.identity.is_some();
    if to.tls.is_some() && keyed {
        bail!("give --to-tls or --to-key/--to-identity, not both: one layer per side");
    }
    if let Some(tls) = &to.tls {
        return Ok(Wrap::Tls(crate::tls::Client::new(tls).context("--to-tls")?));
    }
    if keyed {
        let auth = crate::secure::flags::client_auth(
            to.key.as_deref(),
            to.identity.as_deref(),
            crate::secure::flags::NoKey::DefaultOrRefuse,
            &opts.target.to_string(),
        )
        .context("--to-key/--to-identity")?;
        return Ok(Wrap::Noise(Arc::new(auth)));
    }
    Ok(Wrap::Plain)
}
