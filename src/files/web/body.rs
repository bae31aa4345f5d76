//! Response bodies of the files page: whole ones (pages, JSON, refusals) and streamed ones
//! fed through a small bounded channel by a thread that reads the disk (a download, an
//! archive), so memory stays a few chunks whatever the size.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

/// Every response's body.
pub type Body = BoxBody<Bytes, io::Error>;
/// A response of the files page.
pub type Reply = Response<Body>;

/// A whole body.
pub fn whole(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    whole(Bytes::new())
}

/// A plain-text answer of `status` (one line for a person), with the pages' policy.
pub fn plain(status: StatusCode, text: impl Into<String>) -> Reply {
    let r: Response<http_body_util::Full<Bytes>> = crate::web::plain(status, text);
    r.map(|b| b.map_err(|never| match never {}).boxed())
}

/// The answer to a store error: its status, and a message that names nothing of the server's
/// own paths.
pub fn io_reply(e: &io::Error) -> Reply {
    use crate::files::store::partial::NoSpace;
    use crate::files::store::resolve::NotBeneath;
    let (status, text) = match e.kind() {
        _ if NotBeneath::is(e) => (StatusCode::FORBIDDEN, NotBeneath.to_string()),
        _ if NoSpace::is_full(e) => (StatusCode::INSUFFICIENT_STORAGE, e.to_string()),
        io::ErrorKind::NotFound => (StatusCode::NOT_FOUND, "no such file or folder".into()),
        io::ErrorKind::AlreadyExists => (StatusCode::CONFLICT, e.to_string()),
        io::ErrorKind::NotADirectory => (StatusCode::CONFLICT, e.to_string()),
        io::ErrorKind::DirectoryNotEmpty => {
            (StatusCode::CONFLICT, "the folder is not empty".into())
        }
        io::ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "permission denied".into()),
        io::ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, e.to_string()),
        _ => {
            tracing::warn!(error = %e, "request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not do it".into(),
            )
        }
    };
    plain(status, format!("{text}\n"))
}

/// `value` as a JSON answer of `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(whole(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    crate::web::secured(r)
}

/// The sending end of a streamed body: a blocking thread sends chunks (or an error,
/// which cuts the response).
pub type Feed = mpsc::Sender<io::Result<Bytes>>;

/// A body fed through a channel of `depth` chunks; `len` is its exact length when known.
pub fn streamed(depth: usize, len: Option<u64>) -> (Feed, Body) {
    let (tx, rx) = mpsc::channel(depth);
    (tx, Streamed { rx, left: len }.boxed())
}

struct Streamed {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    left: Option<u64>,
}

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == Some(0) {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(left) = &mut self.left {
                    *left = left.saturating_sub(b.len() as u64);
                }
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            // The feeder stopped before the length it promised: the response is cut.
            Poll::Ready(None) if self.left.is_some() => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended early",
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A [`std::io::Write`] into a [`Feed`], in chunks of `CHUNK` bytes, for writers that run on
/// a blocking thread (the archives).
pub struct FeedWriter {
    tx: Feed,
    buf: Vec<u8>,
}

/// Bytes per chunk a [`FeedWriter`] sends.
const CHUNK: usize = 256 * 1024;

impl FeedWriter {
    /// A writer into `tx`.
    pub fn new(tx: Feed) -> FeedWriter {
        FeedWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl io::Write for FeedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
