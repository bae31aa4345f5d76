//! Netcat: `taojie connect` and `taojie listen` over TCP, UDP and Unix sockets, IPv4 and IPv6.
//!
//! The layers: `stdio` runs standard input and output on plain threads and hands chunks over
//! bounded channels; `pump` moves those chunks to and from one socket (a stream bridge with
//! half-close, and the datagram loops); `connect` and `listen` find the socket; `tls` and
//! `encrypted` wrap it when asked.
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
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::secure::flags::{ClientKeys, ServerKeys};
use crate::server::LiveCaps;

mod connect;
pub mod encrypted;
mod listen;
mod pump;
mod stdio;
mod tls;

/// What `taojie connect` does: where to connect and how.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Where to connect: HOST:PORT, or a socket path with `unix`.
    pub addr: String,
    /// Use UDP: each chunk read from stdin is one datagram.
    pub udp: bool,
    /// Connect to a Unix-domain stream socket at the path `addr`.
    pub unix: bool,
    /// Give up connecting to each address after this many seconds (0: wait as long as it
    /// takes).
    pub wait: f64,
    /// With `udp`: after stdin ends, exit once no datagram has come for this many seconds.
    pub linger: f64,
    /// Say on stderr where it connected and when the peer closed.
    pub verbose: bool,
    /// Encrypt the pipe with a shared key or an identity key (TCP only).
    pub keys: ClientKeys,
    /// Speak TLS (TCP and Unix), verified as these options say.
    pub tls: Option<crate::tls::ClientOptions>,
    /// Connect through this proxy (TCP only).
    pub proxy: Option<crate::proxy_wire::ProxyUrl>,
}

/// What `taojie listen` does: where to listen and how.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Where to listen: HOST:PORT (port 0 picks one), or a socket path with `unix`.
    pub addr: String,
    /// Use UDP: the first sender becomes the peer (the latest one with `keep_open`).
    pub udp: bool,
    /// Listen on a Unix-domain stream socket at the path `addr` (removed on exit).
    pub unix: bool,
    /// After a peer leaves, wait for the next one instead of exiting; stdin is shared.
    pub keep_open: bool,
    /// With `udp`: after stdin ends, exit once no datagram has come for this many seconds.
    pub linger: f64,
    /// Say on stderr who connected and when they left.
    pub verbose: bool,
    /// Encrypt the pipe: the keys a peer must prove (TCP only).
    pub keys: ServerKeys,
    /// Caps on connections still in their handshake (with keys).
    pub preauth: LiveCaps,
    /// Speak TLS with this certificate (or one made at start); none of it set: plain.
    pub tls: crate::tls::ServerOptions,
}

/// `taojie connect`: stdin to the socket, the socket to stdout.
pub async fn connect(args: ConnectOptions) -> Result<ExitCode> {
    connect::run(args).await
}

/// `taojie listen`: wait for a peer, then bridge it with stdin and stdout as `connect` does.
pub async fn listen(args: ListenOptions) -> Result<ExitCode> {
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
