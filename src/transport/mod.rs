//! The seam between a relay and the ways bytes travel (after rathole's transports): a plain
//! TCP or Unix socket ([`plain`]), TLS over one ([`tls`]), or taojie's Noise channel over one
//! ([`noise`]), all one [`Stream`]. A listener's side turns an accepted socket into a
//! [`Stream`] through its [`Accept`] (the handshake, under a deadline); the other side opens
//! one through its [`Dial`] ([`ends`]). Code above — `forward`, and the proxy after it — reads
//! and writes a [`Stream`] and never knows which kind it got; where both ends are plain
//! sockets, the relay can move bytes between them with splice(2) ([`Stream::plain`]).
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub mod ends;
pub mod noise;
pub mod plain;
pub mod tls;

pub use ends::{Accept, Dial, Target};
pub use noise::NoiseStream;
pub use plain::Plain;

/// A connection of any kind, read and written the same way.
pub enum Stream {
    /// A plain socket.
    Plain(Plain),
    /// TLS that we accepted.
    TlsServer(Box<tokio_rustls::server::TlsStream<Plain>>),
    /// TLS that we opened.
    TlsClient(Box<tokio_rustls::client::TlsStream<Plain>>),
    /// taojie's Noise channel (either side).
    Noise(Box<NoiseStream<Plain>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Stream {
    /// The plain socket, when no layer is on it (what splice(2) can work on).
    pub fn plain(&self) -> Option<&Plain> {
        match self {
            Stream::Plain(p) => Some(p),
            _ => None,
        }
    }

    /// The kind, for logs: `plain`, `tls` or `noise`.
    pub fn kind(&self) -> &'static str {
        match self {
            Stream::Plain(_) => "plain",
            Stream::TlsServer(_) | Stream::TlsClient(_) => "tls",
            Stream::Noise(_) => "noise",
        }
    }
}

/// Calls `$method` on whichever stream `$self` holds.
macro_rules! each {
    ($self:expr, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $call,
            Stream::TlsServer($s) => $call,
            Stream::TlsClient($s) => $call,
            Stream::Noise($s) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    /// Ends our direction: TLS sends close_notify and then FIN, Noise its end-of-stream
    /// record and then FIN, a plain socket FIN; reading goes on (half-close).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
