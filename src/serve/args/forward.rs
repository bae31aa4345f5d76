//! The flags of `taojie forward` (and the keys of `serve --config`'s `[[forward]]` tables),
//! and the forward options they make.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::forward::{Endpoint, FromLayer, Options, ToLayer};
use crate::server::{LimitArgs, PreAuthArgs};
use crate::tls::{ClientOptions, Pin, ServerOptions};

/// Flags of `taojie forward`.
#[derive(Args, Debug, Clone)]
#[command(
    mut_arg("idle_timeout", |a| a.default_value("0").help(
        "Close a connection that moves no byte for this many seconds (0: never, as socat; \
         a forwarded session may idle, and TCP keepalive finds vanished clients)"
    )),
    after_help = "\
LISTEN and TARGET: HOST:PORT (TCP), udp:HOST:PORT, unix:PATH. A LISTEN of PORT alone is \
127.0.0.1:PORT; listening beyond loopback is your explicit choice. Each client gets its own \
connection to TARGET; both directions are relayed with half-close until each side has ended. \
Between plain TCP and Unix sockets the bytes move with splice(2), never through user space.

Prints `forward PROTO ADDRESS` once bound, and one log line per connection with the bytes \
each way.

Examples:
  taojie forward 8080 127.0.0.1:80                       a port to another
  taojie forward 127.0.0.1:2375 unix:/var/run/docker.sock
  taojie forward udp:5353 udp:127.0.0.1:53               per-client UDP sessions
  taojie forward 127.0.0.1:8443 example.com:443 --to-tls  plain in, verified TLS out
  taojie forward 0.0.0.0:443 127.0.0.1:80 --from-tls-cert fullchain.pem --from-tls-key key.pem

A tunnel (the ssh -L job), with a shared key from `taojie keygen k`:
  server: taojie forward 0.0.0.0:9443 127.0.0.1:5432 --from-key k
  laptop: taojie forward 127.0.0.1:5432 server:9443 --to-key k      then: psql -h 127.0.0.1"
)]
pub struct ForwardArgs {
    /// Where clients come in: HOST:PORT, PORT (loopback), udp:HOST:PORT or unix:PATH
    #[arg(value_parser = Endpoint::listen)]
    pub listen: Endpoint,
    /// Where each client goes: HOST:PORT, udp:HOST:PORT or unix:PATH
    #[arg(value_parser = Endpoint::target)]
    pub target: Endpoint,

    /// Accept TLS from clients with this PEM certificate chain (needs --from-tls-key)
    #[arg(
        long,
        value_name = "FILE",
        requires = "from_tls_key",
        help_heading = "Listening side"
    )]
    pub from_tls_cert: Option<PathBuf>,
    /// The private key of --from-tls-cert (PEM)
    #[arg(
        long,
        value_name = "FILE",
        requires = "from_tls_cert",
        help_heading = "Listening side"
    )]
    pub from_tls_key: Option<PathBuf>,
    /// Accept TLS with a certificate made at start; its key pin is printed for --pin
    #[arg(
        long,
        conflicts_with = "from_tls_cert",
        help_heading = "Listening side"
    )]
    pub from_tls_self_signed: bool,
    /// Accept only clients proving this shared key (taojie's Noise channel, as `connect --key`)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from_tls_cert", "from_tls_self_signed"], help_heading = "Listening side")]
    pub from_key: Option<PathBuf>,
    /// Accept clients with identity keys: our key pair (needs --from-authorized)
    #[arg(long, value_name = "FILE", requires = "from_authorized", conflicts_with_all = ["from_tls_cert", "from_tls_self_signed"], help_heading = "Listening side")]
    pub from_identity: Option<PathBuf>,
    /// The client public keys let in with --from-identity (re-read on SIGHUP)
    #[arg(
        long,
        value_name = "FILE",
        requires = "from_identity",
        help_heading = "Listening side"
    )]
    pub from_authorized: Option<PathBuf>,

    /// Speak TLS to the target, verifying its certificate (system roots and host name)
    #[arg(long, help_heading = "Target side")]
    pub to_tls: bool,
    /// With --to-tls: trust the certificates in FILE (PEM) too
    #[arg(
        long,
        value_name = "FILE",
        requires = "to_tls",
        help_heading = "Target side"
    )]
    pub to_cacert: Option<PathBuf>,
    /// With --to-tls: trust the target whose certificate key has this pin (sha256:BASE64)
    #[arg(
        long,
        value_name = "PIN",
        requires = "to_tls",
        help_heading = "Target side"
    )]
    pub to_pin: Vec<Pin>,
    /// With --to-tls: check nothing (anyone on the path can read and change the traffic)
    #[arg(long, requires = "to_tls", help_heading = "Target side")]
    pub to_insecure: bool,
    /// With --to-tls: the name to ask for and check, instead of TARGET's host
    #[arg(
        long,
        value_name = "NAME",
        requires = "to_tls",
        help_heading = "Target side"
    )]
    pub to_sni: Option<String>,
    /// Prove this shared key to the target (a `forward --from-key` or `listen --key`)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "to_tls",
        help_heading = "Target side"
    )]
    pub to_key: Option<PathBuf>,
    /// Prove this identity key to the target; its key is pinned in known_hosts
    #[arg(long, value_name = "FILE", conflicts_with_all = ["to_tls", "to_key"], help_heading = "Target side")]
    pub to_identity: Option<PathBuf>,

    /// Reach the target through a proxy: socks5://, socks5h:// (the target's name resolved by
    /// the proxy) or http:// (CONNECT), with USER:PASSWORD@ if it asks (never printed)
    #[arg(long, value_name = "URL", help_heading = "Target side")]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,

    /// Give up connecting to the target (and its handshake) after SECS seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = crate::flags::positive_secs)]
    pub connect_timeout: f64,
    /// End a UDP client's session after SECS seconds with no datagram either way
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = crate::flags::positive_secs)]
    pub udp_timeout: f64,
    /// Connection limits (UDP: sessions at once)
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Limits on clients still in their handshake (with --from-*)
    #[command(flatten)]
    pub preauth: PreAuthArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics (PORT alone: 127.0.0.1:PORT)
    #[arg(long, value_name = "ADDR", value_parser = crate::serve::metrics::spec)]
    pub metrics: Option<String>,
}

impl From<ForwardArgs> for Options {
    fn from(a: ForwardArgs) -> Options {
        let secs = |s: f64| Duration::from_secs_f64(s);
        let to_tls = a.to_tls.then(|| ClientOptions {
            cacert: a.to_cacert,
            pins: a.to_pin,
            insecure: a.to_insecure,
            sni: a.to_sni,
            alpn: Vec::new(),
        });
        Options {
            from: FromLayer {
                tls: ServerOptions {
                    cert: a.from_tls_cert,
                    key: a.from_tls_key,
                    self_signed: a.from_tls_self_signed,
                    alpn: Vec::new(),
                },
                key: a.from_key,
                identity: a.from_identity,
                authorized: a.from_authorized,
            },
            to: ToLayer {
                tls: to_tls,
                key: a.to_key,
                identity: a.to_identity,
                proxy: a.proxy,
            },
            limits: a.limits.to_limits().into(),
            preauth: a.preauth.caps(),
            connect_timeout: secs(a.connect_timeout),
            udp_timeout: secs(a.udp_timeout),
            ..Options::new(a.listen, a.target)
        }
    }
}
