//! Netcat: `taojie connect` and `taojie listen` over TCP, UDP and Unix sockets, IPv4 and IPv6.
//!
//! The layers: `stdio` runs standard input and output on plain threads and hands chunks over
//! bounded channels; `pump` moves those chunks to and from one socket (a stream bridge with
//! half-close, and the datagram loops); `connect` and `listen` find the socket.
//!
//! End-of-stream rules, the ones ncat users keep asking for: at stdin EOF a stream socket is
//! half-closed and whatever the peer still sends is printed; when the peer closes, the command
//! exits 0 once stdout has taken every byte, even if stdin is still open. UDP has no EOF, so
//! after stdin ends the command waits until no datagram has come for `--linger` seconds.
//!
//! Quiet by default: stdout carries only the peer's bytes, and stderr only errors (plus the
//! `listen PROTO ADDRESS` line a listener must print). `-v` adds a line per connection, in
//! plain words rather than through `tracing`, whose default `info` level would print them for
//! everyone, while ncat users often capture stderr along with stdout.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

mod connect;
pub mod encrypted;
mod listen;
mod pump;
mod stdio;

/// Flags of `taojie connect`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "At stdin EOF a TCP or Unix connection is half-closed and what the \
peer still sends is printed; the command exits 0 when the peer closes. Over UDP it exits once \
stdin has ended and no datagram has come for --linger seconds.

Examples:
  taojie connect 127.0.0.1:9007 < file > copy      send a file, save what comes back
  printf 'hi' | taojie connect -u 127.0.0.1:9007   one datagram, print the reply
  taojie connect --unix /tmp/echo.sock"
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
    /// Encrypt the pipe with this shared key (the listener must have the same one)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["identity", "udp", "unix"])]
    pub key: Option<PathBuf>,
    /// Encrypt the pipe with your identity key; the listener must list FILE.pub in its
    /// --authorized file, and its own key is pinned in known_hosts on first contact
    #[arg(long, value_name = "FILE", conflicts_with_all = ["udp", "unix"])]
    pub identity: Option<PathBuf>,
}

/// Flags of `taojie listen`.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Prints `listen PROTO ADDRESS` on stderr once bound; stdout carries \
only the peer's bytes.

Examples:
  taojie listen 127.0.0.1:0 > received             one peer, save what it sends
  taojie listen [::1]:8000 --keep-open < motd      greet one client after another
  taojie listen -u 127.0.0.1:5353"
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
    /// Encrypt the pipe: only a peer with this shared key gets in
    #[arg(long, value_name = "FILE", conflicts_with_all = ["udp", "unix"])]
    pub key: Option<PathBuf>,
    /// Encrypt the pipe with identity keys: the listener's own key pair; needs --authorized
    #[arg(long, value_name = "FILE", requires = "authorized", conflicts_with_all = ["udp", "unix"])]
    pub identity: Option<PathBuf>,
    /// The peers' public keys let in (re-read on SIGHUP); needs --identity
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub authorized: Option<PathBuf>,
    /// Limits on connections that have not proven their key yet (with --key or --identity)
    #[command(flatten)]
    pub preauth: crate::server::PreAuthArgs,
}

/// `taojie connect`: stdin to the socket, the socket to stdout.
pub async fn connect(args: ConnectArgs) -> Result<ExitCode> {
    connect::run(args).await
}

/// `taojie listen`: wait for a peer, then bridge it with stdin and stdout as `connect` does.
pub async fn listen(args: ListenArgs) -> Result<ExitCode> {
    listen::run(args).await
}

/// How a session with one peer ended, when it ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The peer closed its side (or, over UDP, fell quiet after stdin ended).
    PeerClosed,
    /// Whoever reads our stdout stopped reading: nobody is left to give the bytes to.
    StdoutClosed,
}

/// Longest time a flag may ask for (about 31 years): later instants are still representable.
const MAX_SECS: f64 = 1e9;

/// Seconds from a flag as a duration: negative or NaN counts as zero, anything past
/// [`MAX_SECS`] (infinity too) as `MAX_SECS`.
fn secs(s: f64) -> Duration {
    let s = if s > 0.0 { s.min(MAX_SECS) } else { 0.0 };
    Duration::from_secs_f64(s)
}

/// Prints an informational line on stderr when `-v` asked for it.
fn note(verbose: bool, msg: std::fmt::Arguments<'_>) {
    if verbose {
        eprintln!("taojie: {msg}");
    }
}
