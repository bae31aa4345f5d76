//! The flags of `taojie connect` and `taojie listen`, and the netcat options they make.
use std::path::PathBuf;

use clap::Args;

use crate::flags::in_place;
use crate::netcat::{ConnectOptions, ListenOptions};
use crate::secure::flags::{ClientKeyArgs, ServerKeyArgs};
use crate::server::PreAuthArgs;
use crate::tls::{ClientOptions, Pin, ServerOptions};

/// Flags of `taojie connect`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "At stdin EOF a TCP or Unix connection is half-closed and what the \
peer still sends is printed; the command exits 0 when the peer closes. Over UDP it exits once \
stdin has ended and no datagram has come for --linger seconds.

Examples:
  taojie connect 127.0.0.1:9007 < file > copy      send a file, save what comes back
  printf 'hi' | taojie connect -u 127.0.0.1:9007   one datagram, print the reply
  taojie connect --unix /tmp/echo.sock
  taojie connect example.com:443 --tls -v          TLS, verified; -v shows the certificate
  taojie connect 127.0.0.1:8443 --tls --pin sha256:BASE64   trust one key (listen --tls-self-signed)
  taojie connect --proxy socks5h://127.0.0.1:1080 example.com:22   through a SOCKS5 proxy
  ssh -o ProxyCommand='taojie connect --proxy socks5h://127.0.0.1:1080 %h:%p' host",
    mut_args(in_place("key", |a| a
        .help("Encrypt the pipe with this shared key (the listener must have the same one)")
        .conflicts_with_all(["udp", "unix"]))),
    mut_args(in_place("identity", |a| a
        .help(
            "Encrypt the pipe with your identity key; the listener must list FILE.pub in its \
             --authorized file, and its own key is pinned in known_hosts on first contact"
        )
        .conflicts_with_all(["udp", "unix"]))),
)]
pub struct ConnectArgs {
    /// Where to connect: HOST:PORT, or a socket path with --unix
    pub addr: String,
    /// Use UDP: each chunk read from stdin is one datagram
    #[arg(long, short = 'u', conflicts_with = "unix")]
    pub udp: bool,
    /// Connect to a Unix-domain stream socket at the path ADDR
    #[arg(long, short = 'U')]
    pub unix: bool,
    /// Give up connecting to each address after SECS seconds (0: wait as long as it takes)
    #[arg(long, short = 'w', value_name = "SECS", default_value_t = 10.0, value_parser = crate::flags::secs)]
    pub wait: f64,
    /// With --udp: after stdin ends, exit once no datagram has come for SECS seconds
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = crate::flags::secs)]
    pub linger: f64,
    /// Say on stderr where it connected and when the peer closed
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Connect through a proxy: socks5://HOST:PORT (names resolved here), socks5h://
    /// (names resolved by the proxy) or http:// (CONNECT), with USER:PASSWORD@ if it asks
    /// (never printed)
    #[arg(long, value_name = "URL", conflicts_with_all = ["udp", "unix"])]
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
    /// Key flags
    #[command(flatten)]
    pub keys: ClientKeyArgs,
    /// TLS flags (--tls, --cacert, --pin, --insecure, --sni, --alpn)
    #[command(flatten)]
    pub tls: TlsConnectArgs,
}

/// The TLS flags of `taojie connect`.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsConnectArgs {
    /// Speak TLS, verifying the certificate against the system's roots and the host name
    /// (a failure is one line saying why: expired, wrong name, unknown issuer)
    #[arg(long, conflicts_with_all = ["udp", "key", "identity"])]
    pub tls: bool,
    /// With --tls: trust the certificates in FILE (PEM) as well as the system's
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub cacert: Option<PathBuf>,
    /// With --tls: trust a server whose certificate key has this SHA-256 (sha256:BASE64, as
    /// `listen --tls-self-signed` and `-v` print), instead of the roots and the name
    #[arg(long, value_name = "PIN", requires = "tls")]
    pub pin: Vec<Pin>,
    /// With --tls: check nothing (warned about: anyone on the path can read and change it)
    #[arg(long, requires = "tls", conflicts_with_all = ["cacert", "pin"])]
    pub insecure: bool,
    /// With --tls: the name to ask for (SNI) and check, instead of ADDR's host
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub sni: Option<String>,
    /// With --tls: offer these ALPN protocols, e.g. h2,http/1.1
    #[arg(long, value_name = "LIST", requires = "tls", value_delimiter = ',')]
    pub alpn: Vec<String>,
}

impl TlsConnectArgs {
    /// The TLS client options these flags ask for, if --tls.
    pub fn options(self) -> Option<ClientOptions> {
        self.tls.then_some(ClientOptions {
            cacert: self.cacert,
            pins: self.pin,
            insecure: self.insecure,
            sni: self.sni,
            alpn: self.alpn,
        })
    }
}

/// Flags of `taojie listen`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Prints `listen PROTO ADDRESS` on stderr once bound; stdout carries \
only the peer's bytes.

Examples:
  taojie listen 127.0.0.1:0 > received             one peer, save what it sends
  taojie listen [::1]:8000 --keep-open < motd      greet one client after another
  taojie listen -u 127.0.0.1:5353
  taojie listen 127.0.0.1:8443 --tls-self-signed   TLS; prints the key pin for connect --pin
  taojie listen 0.0.0.0:443 --tls-cert fullchain.pem --tls-key key.pem",
    mut_args(in_place("key", |a| a
        .help("Encrypt the pipe: only a peer with this shared key gets in")
        .conflicts_with_all(["udp", "unix"]))),
    mut_args(in_place("identity", |a| a
        .help("Encrypt the pipe with identity keys: the listener's own key pair; needs --authorized")
        .conflicts_with_all(["udp", "unix"]))),
    mut_args(in_place("authorized", |a| a
        .help("The peers' public keys let in (re-read on SIGHUP); needs --identity"))),
)]
pub struct ListenArgs {
    /// Where to listen: HOST:PORT (port 0 picks one), or a socket path with --unix
    pub addr: String,
    /// Use UDP: the first sender becomes the peer (the latest one with --keep-open)
    #[arg(long, short = 'u', conflicts_with = "unix")]
    pub udp: bool,
    /// Listen on a Unix-domain stream socket at the path ADDR (removed on exit)
    #[arg(long, short = 'U')]
    pub unix: bool,
    /// After a peer leaves, wait for the next one instead of exiting; stdin is shared
    #[arg(long, short = 'k')]
    pub keep_open: bool,
    /// With --udp: after stdin ends, exit once no datagram has come for SECS seconds
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = crate::flags::secs)]
    pub linger: f64,
    /// Say on stderr who connected and when they left
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Key flags
    #[command(flatten)]
    pub keys: ServerKeyArgs,
    /// Limits on connections that have not proven their key yet (with --key or --identity)
    #[command(flatten)]
    pub preauth: PreAuthArgs,
    /// TLS flags (--tls-cert, --tls-key, --tls-self-signed)
    #[command(flatten)]
    pub tls: TlsListenArgs,
}

/// The TLS flags of `taojie listen` (`--key` stays the shared Noise key, so TLS files have
/// names of their own, as ncat's `--ssl-cert` and `--ssl-key`).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsListenArgs {
    /// Speak TLS with this PEM certificate chain (the listener's own first); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with_all = ["udp", "key", "identity"])]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Speak TLS with a certificate made at start; its key pin (for connect --pin) and
    /// fingerprint are printed on stderr
    #[arg(long, conflicts_with_all = ["tls_cert", "udp", "key", "identity"])]
    pub tls_self_signed: bool,
}

impl From<TlsListenArgs> for ServerOptions {
    fn from(a: TlsListenArgs) -> Self {
        ServerOptions {
            cert: a.tls_cert,
            key: a.tls_key,
            self_signed: a.tls_self_signed,
            alpn: Vec::new(),
        }
    }
}

impl From<ConnectArgs> for ConnectOptions {
    fn from(a: ConnectArgs) -> Self {
        ConnectOptions {
            addr: a.addr,
            udp: a.udp,
            unix: a.unix,
            wait: a.wait,
            linger: a.linger,
            verbose: a.verbose,
            keys: a.keys.into(),
            tls: a.tls.options(),
            proxy: a.proxy,
        }
    }
}

impl From<ListenArgs> for ListenOptions {
    fn from(a: ListenArgs) -> Self {
        ListenOptions {
            addr: a.addr,
            udp: a.udp,
            unix: a.unix,
            keep_open: a.keep_open,
            linger: a.linger,
            verbose: a.verbose,
            keys: a.keys.keys(false),
            preauth: a.preauth.caps().into(),
            tls: a.tls.into(),
        }
    }
}
