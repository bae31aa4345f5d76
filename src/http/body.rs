//! A response body as it is written out: chunks as they come for a body sent as it is, or
//! decoded here for one sent compressed (`Content-Encoding: gzip` or `br`, which the request
//! offers). Decoding here rather than in the HTTP client keeps the fact that a body was
//! compressed, so its decoded size can be capped ([`super::save::Cap`]): a few hundred
//! kilobytes of gzip can inflate to gigabytes.
use anyhow::{Result, bail};
use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder};
use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// What a request says it takes, in the order it prefers them.
pub const ACCEPT_ENCODING: &str = "gzip, br";

/// Bytes read from a decoder at a time.
const CHUNK: usize = 64 * 1024;

/// A body, plain or being decoded.
pub enum Body {
    /// Sent as it is.
    Plain(BoxStream<'static, reqwest::Result<Bytes>>),
    /// Sent compressed, decoded as it is read.
    Decoded(Box<dyn AsyncRead + Send + Unpin>),
}

impl Body {
    /// The body of `response`, decoded if its Content-Encoding says so; an encoding taojie
    /// did not offer is an error.
    pub fn of(response: reqwest::Response) -> Result<Body> {
        let encoding = response
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let stream = response.bytes_stream();
        if matches!(encoding.as_str(), "" | "identity") {
            return Ok(Body::Plain(stream.boxed()));
        }
        let reader = StreamReader::new(stream.map_err(std::io::Error::other));
        Ok(Body::Decoded(match encoding.as_str() {
            "gzip" | "x-gzip" => {
                let mut d = GzipDecoder::new(reader);
                d.multiple_members(true);
                Box::new(d)
            }
            "br" => Box::new(BrotliDecoder::new(reader)),
            other => bail!("the server sent the body as {other:?}, which was not asked for"),
        }))
    }

    /// The next piece of the (decoded) body; `None` at its end.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        match self {
            Body::Plain(stream) => stream.next().await.map(|r| r.map_err(super::describe)),
            Body::Decoded(reader) => {
                let mut buf = BytesMut::with_capacity(CHUNK);
                match reader.read_buf(&mut buf).await {
                    Ok(0) => None,
                    Ok(_) => Some(Ok(buf.freeze())),
                    Err(e) => Some(Err(decode_error(e))),
                }
            }
        }
    }
}

/// A failed read of a compressed body: the transfer's own error, or a corrupt encoding.
fn decode_error(e: std::io::Error) -> anyhow::Error {
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<reqwest::Error>())
    {
        Some(Ok(transfer)) => super::describe(*transfer),
        Some(Err(other)) => anyhow::anyhow!("the compressed body is corrupt: {other}"),
        None => anyhow::anyhow!("the compressed body is corrupt ({kind})"),
    }
}
