//! taojie's own encrypted pipe as a transport: the Noise handshake ([`crate::secure`]) with a
//! shared key or identity keys, then the hello for the `pipe` service, then bytes. It is the
//! channel `connect --key` and `listen --key` open, so either end of a `forward` tunnel also
//! talks to those. Half-close carries through: our end of input is the channel's
//! end-of-stream record (then FIN), and a connection cut without one is an error.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::framing::{FramedStream, hello};
use crate::secure::{self, ClientAuth, SecureStream, ServerAuth};

/// The service named in the hello.
pub const SERVICE: &str = "pipe";

/// The plaintext side of an encrypted connection, with the bytes that came in behind the
/// hello handed out first.
pub struct NoiseStream<S> {
    head: BytesMut,
    inner: SecureStream<S>,
}

/// Client side: handshake (a server's identity key pinned on first contact, said on
/// stderr) and hello over `stream`.
pub async fn client<S>(stream: S, auth: &ClientAuth) -> Result<NoiseStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let secure = secure::connect(stream, auth).await?;
    let mut t = FramedStream::new(secure);
    hello::client(&mut t, SERVICE).await.context("hello")?;
    Ok(NoiseStream::from(t))
}

/// Server side: handshake and hello over `stream`; also who the client proved to be.
pub async fn server<S>(stream: S, auth: &ServerAuth) -> Result<(NoiseStream<S>, secure::Proven)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (secure, peer) = secure::server(stream, auth).await?;
    let mut t = FramedStream::new(secure);
    hello::server(&mut t, SERVICE).await.context("hello")?;
    Ok((NoiseStream::from(t), peer))
}

impl<S: AsyncRead + AsyncWrite + Unpin> From<FramedStream<SecureStream<S>>> for NoiseStream<S> {
    fn from(t: FramedStream<SecureStream<S>>) -> Self {
        let parts = t.into_framed().into_parts();
        NoiseStream {
            head: parts.read_buf,
            inner: parts.io,
        }
    }
}

impl<S> NoiseStream<S> {
    /// The plaintext that came in behind the hello (to be handed out first), and the
    /// channel, for a relay that reads and writes the channel itself.
    pub fn into_parts(self) -> (BytesMut, SecureStream<S>) {
        (self.head, self.inner)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for NoiseStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.head.has_remaining() {
            let n = me.head.len().min(buf.remaining());
            buf.put_slice(&me.head[..n]);
            me.head.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for NoiseStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
