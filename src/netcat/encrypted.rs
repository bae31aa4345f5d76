//! The encrypted pipe: `connect` and `listen` with `--key` or identity keys open the same
//! Noise channel the services use, say hello for the `pipe` service, and then carry stdin and
//! stdout inside it — an encrypted netcat. Half-close works as in the plain pipe: our end of
//! input is the channel's end-of-stream record, and a connection cut without one is an error.
use std::io::Cursor;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::framing::{FramedStream, hello};
use crate::secure::{self, ClientAuth, ServerAuth};

/// The service named in the hello.
pub const SERVICE: &str = "pipe";

/// The plaintext halves of an encrypted connection: a reader (bytes that came with the
/// hello first) and a writer.
pub type Halves<S> = (
    tokio::io::Chain<Cursor<bytes::BytesMut>, tokio::io::ReadHalf<secure::SecureStream<S>>>,
    tokio::io::WriteHalf<secure::SecureStream<S>>,
);

/// Client side: handshake and hello over `stream`.
pub async fn client<S>(stream: S, auth: &ClientAuth) -> Result<Halves<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let secure = secure::connect(stream, auth).await?;
    let mut t = FramedStream::new(secure);
    hello::client(&mut t, SERVICE).await.context("hello")?;
    Ok(halves(t))
}

/// Server side: handshake and hello over `stream`.
pub async fn server<S>(stream: S, auth: &ServerAuth) -> Result<Halves<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (secure, _peer) = secure::server(stream, auth).await?;
    let mut t = FramedStream::new(secure);
    hello::server(&mut t, SERVICE).await.context("hello")?;
    Ok(halves(t))
}

fn halves<S: AsyncRead + AsyncWrite + Unpin>(
    t: FramedStream<secure::SecureStream<S>>,
) -> Halves<S> {
    let parts = t.into_framed().into_parts();
    let (r, w) = tokio::io::split(parts.io);
    (Cursor::new(parts.read_buf).chain(r), w)
}
