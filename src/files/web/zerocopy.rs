//! A file's bytes sent with sendfile(2): from the descriptor opened beneath the root straight
//! to the socket, never through user space, while hyper still writes every header and keeps
//! the connection's HTTP (lengths, keep-alive, the next request).
//!
//! hyper only sends bodies made of byte chunks, so a download's body (made by [`body`]) yields
//! *stand-ins*: slices of one untouched region that no real data ever lies in, each as long
//! as the span of the file it stands for, and queues that span in the connection's
//! [`Outbox`]. The connection ([`Wire`]) passes every other write through; a write of a
//! stand-in becomes sendfile(2) of the span at the head of the queue. hyper writes the body's
//! chunks in order and never copies them (`writev(true)` keeps its queued write strategy), so
//! the queue and the stand-ins go in step; the length of each is checked against the other,
//! and a write out of step fails the connection rather than send anything but the file.
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::task::JoinHandle;

use crate::server::Conn;

/// Bytes of the file one stand-in chunk covers (and so the most the kernel is asked to read
/// ahead at once).
const FRAME: usize = 8 << 20;

/// The region stand-ins are cut from: allocated zeroed once and never written or read, so
/// it costs address space, not memory.
fn region() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| vec![0u8; FRAME].leak())
}

/// Whether `buf` is (part of) a stand-in.
fn is_stand_in(buf: &[u8]) -> bool {
    let r = region().as_ptr_range();
    !buf.is_empty() && r.contains(&buf.as_ptr())
}

/// One span of a file waiting to be sent.
struct Span {
    file: Arc<File>,
    offset: u64,
    left: u64,
}

/// The spans of files a connection's responses have queued, in the order hyper writes them;
/// handed to each request as an extension.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<VecDeque<Span>>>);

impl Outbox {
    fn push(&self, span: Span) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(span);
    }
}

/// The body of `len` bytes of `file` from `start`, sent through `outbox`'s connection.
pub fn body(outbox: &Outbox, file: File, start: u64, len: u64) -> super::body::Body {
    use http_body_util::BodyExt;
    let file = Arc::new(file);
    let warming = (len > 0).then(|| warm(&file, start, len));
    FileBody {
        outbox: outbox.clone(),
        file,
        offset: start,
        left: len,
        warming,
    }
    .boxed()
}

/// Asks the kernel, on a blocking thread, to read the next frame of the file ahead, so that
/// sendfile on the async worker finds its pages cached rather than waits on the disk (best
/// effort: a filesystem without read-ahead, tmpfs, ignores it).
fn warm(file: &Arc<File>, offset: u64, left: u64) -> JoinHandle<()> {
    let file = file.clone();
    let len = NonZeroU64::new(left.min(FRAME as u64));
    tokio::task::spawn_blocking(move || {
        let _ = rustix::fs::fadvise(&*file, offset, len, rustix::fs::Advice::WillNeed);
    })
}

/// A file's bytes as stand-in chunks, one frame at a time, each once its read-ahead is done.
struct FileBody {
    outbox: Outbox,
    file: Arc<File>,
    offset: u64,
    left: u64,
    warming: Option<JoinHandle<()>>,
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if let Some(w) = &mut self.warming {
            let _ = ready!(Pin::new(w).poll(cx));
            self.warming = None;
        }
        let n = self.left.min(FRAME as u64);
        self.outbox.push(Span {
            file: self.file.clone(),
            offset: self.offset,
            left: n,
        });
        self.offset += n;
        self.left -= n;
        if self.left > 0 {
            self.warming = Some(warm(&self.file, self.offset, self.left));
        }
        let stand_in = Bytes::from_static(&region()[..n as usize]);
        Poll::Ready(Some(Ok(Frame::data(stand_in))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        if let Some(w) = &self.warming {
            w.abort();
        }
    }
}

/// A connection as hyper sees it: reads and writes pass through to the [`Conn`], except a
/// write of a stand-in, which sends the span at the head of the [`Outbox`] with sendfile(2).
pub struct Wire {
    conn: Conn,
    outbox: Outbox,
}

impl Wire {
    /// `conn`, sending the spans queued in `outbox`.
    pub fn new(conn: Conn, outbox: Outbox) -> Wire {
        Wire { conn, outbox }
    }

    /// Sends up to `want` bytes of the span at the head of the queue, which must have exactly
    /// `want` bytes left (the stand-in hyper is writing is the rest of its chunk).
    fn poll_send_file(&self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let mut queue = self.outbox.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(span) = queue.front_mut() else {
            return Poll::Ready(Err(out_of_step("no file span is queued")));
        };
        if span.left != want as u64 {
            return Poll::Ready(Err(out_of_step("a file span and its chunk differ")));
        }
        loop {
            let mut offset = span.offset;
            let sent = self.conn.try_io_counted(Interest::WRITABLE, || {
                Ok(rustix::fs::sendfile(
                    self.conn.as_fd(),
                    &*span.file,
                    Some(&mut offset),
                    want,
                )?)
            });
            match sent {
                // The file is shorter than when it was opened: the response is cut, not padded.
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended early",
                    )));
                }
                Ok(n) => {
                    span.offset += n as u64;
                    span.left -= n as u64;
                    if span.left == 0 {
                        queue.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.conn.poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn out_of_step(what: &str) -> io::Error {
    io::Error::other(format!("zero-copy send out of step: {what}"))
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if is_stand_in(buf) {
            return self.poll_send_file(cx, buf.len());
        }
        Pin::new(&mut self.get_mut().conn).poll_write(cx, buf)
    }

    /// What comes before the first stand-in is written as it is (a response's head); a
    /// stand-in first is sent from the file.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| is_stand_in(b)) {
            Some(0) => self.poll_send_file(cx, bufs[0].len()),
            Some(k) => Pin::new(&mut self.get_mut().conn).poll_write_vectored(cx, &bufs[..k]),
            None => Pin::new(&mut self.get_mut().conn).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().conn).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().conn).poll_shutdown(cx)
    }
}
