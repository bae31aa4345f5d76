//! One accepted connection: a TCP or Unix stream that records when it was last active, so the
//! framework can close it after an idle timeout without the service doing anything.
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use crate::metrics::Service;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain peer (usually unnamed).
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Milliseconds since a fixed start at which a connection last moved a byte; kept only when
/// an idle timeout needs it, since reading the clock and touching a shared counter on every
/// read and write is a cost a chat broker writing to 10,000 members feels.
#[derive(Clone, Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: Option<Arc<AtomicU64>>,
}

impl Activity {
    /// A clock that records activity when `tracked`, else one that never moves.
    pub(crate) fn new(tracked: bool) -> Self {
        Activity {
            start: Instant::now(),
            last_ms: tracked.then(|| Arc::new(AtomicU64::new(0))),
        }
    }

    pub(crate) fn touch(&self) {
        if let Some(last) = &self.last_ms {
            let ms = self.start.elapsed().as_millis() as u64;
            last.store(ms, Ordering::Relaxed);
        }
    }

    /// When the connection last moved a byte (its start when not tracked).
    pub(crate) fn last(&self) -> Instant {
        let ms = self
            .last_ms
            .as_ref()
            .map_or(0, |last| last.load(Ordering::Relaxed));
        self.start + std::time::Duration::from_millis(ms)
    }
}

/// An accepted stream connection, readable and writable either through tokio's
/// `AsyncRead`/`AsyncWrite` or through readiness plus `try_read`/`try_write` (which lets a
/// handler borrow a per-thread buffer instead of keeping one per idle connection).
#[derive(Debug)]
pub struct Conn {
    inner: Inner,
    peer: Peer,
    activity: Activity,
    /// Where its bytes are counted: the service's counters, fetched once per listener; none
    /// for a relayed socket pair, whose bytes the client's own connection already counted.
    meter: Option<&'static Service>,
}

impl Conn {
    pub(crate) fn tcp(stream: TcpStream, peer: SocketAddr, activity: Activity) -> Self {
        // Echo-style request/response traffic stalls on Nagle against delayed ACKs.
        let _ = stream.set_nodelay(true);
        Conn {
            inner: Inner::Tcp(stream),
            peer: Peer::Tcp(peer),
            activity,
            meter: None,
        }
    }

    pub(crate) fn unix(stream: UnixStream, activity: Activity) -> Self {
        Conn {
            inner: Inner::Unix(stream),
            peer: Peer::Unix,
            activity,
            meter: None,
        }
    }

    /// A connection that is one end of a socket pair, whose other end relays a client's
    /// stream after some transformation (the chat broker's encrypted members).
    pub fn relayed(stream: UnixStream) -> Self {
        Conn::unix(stream, Activity::new(false))
    }

    /// Counts the connection's bytes read and written in `meter`.
    pub(crate) fn metered(self, meter: &'static Service) -> Self {
        Conn {
            meter: Some(meter),
            ..self
        }
    }

    fn count_in(&self, n: usize) {
        if let Some(m) = self.meter {
            m.bytes_in.inc_by(n as u64);
        }
    }

    fn count_out(&self, n: usize) {
        if let Some(m) = self.meter {
            m.bytes_out.inc_by(n as u64);
        }
    }

    /// The peer's address.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Waits until the connection may be readable.
    pub async fn readable(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.readable().await,
            Inner::Unix(s) => s.readable().await,
        }
    }

    /// Waits until the connection may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.writable().await,
            Inner::Unix(s) => s.writable().await,
        }
    }

    /// Reads what is there without waiting; `WouldBlock` when nothing is.
    ///
    /// A read that fills less than `buf` emptied the socket, so it also clears the read
    /// readiness, as tokio's own `poll_read` does: the next [`Conn::readable`] waits for new
    /// bytes instead of returning at once for a `read` that can only say `EAGAIN` (one system
    /// call per request saved on request/response traffic). Bytes that arrive after the read
    /// raise a new readiness event, which clearing the one the read was made under leaves set.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = short_clears(buf.len(), |f| match &self.inner {
            Inner::Tcp(s) => s.try_io(Interest::READABLE, || f(read_fd(s, buf))),
            Inner::Unix(s) => s.try_io(Interest::READABLE, || f(read_fd(s, buf))),
        })?;
        self.activity.touch();
        self.count_in(n);
        Ok(n)
    }

    /// Writes what the socket takes without waiting; `WouldBlock` when it takes nothing.
    /// A short write clears the write readiness (the socket's buffer is full), so the next
    /// [`Conn::writable`] waits for room instead of trying a write bound to fail.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = short_clears(buf.len(), |f| match &self.inner {
            Inner::Tcp(s) => s.try_io(Interest::WRITABLE, || f(write_fd(s, buf))),
            Inner::Unix(s) => s.try_io(Interest::WRITABLE, || f(write_fd(s, buf))),
        })?;
        self.activity.touch();
        self.count_out(n);
        Ok(n)
    }

    /// Writes from several buffers in one system call without waiting (a broker sends many
    /// shared messages at once this way, with no copy).
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = match &self.inner {
            Inner::Tcp(s) => s.try_write_vectored(bufs),
            Inner::Unix(s) => s.try_write_vectored(bufs),
        }?;
        self.activity.touch();
        self.count_out(n);
        Ok(n)
    }
}

impl Conn {
    /// Waits until the socket may be ready for `interest`, for system calls tokio does not
    /// make itself (splice(2)); see [`Conn::try_io_counted`].
    pub async fn ready(&self, interest: Interest) -> io::Result<()> {
        match &self.inner {
            Inner::Tcp(s) => s.ready(interest).await.map(drop),
            Inner::Unix(s) => s.ready(interest).await.map(drop),
        }
    }

    /// Polls until the socket may be writable, for a writer that makes its own system calls
    /// (sendfile(2)) inside `poll_write`; see [`Conn::try_io_counted`].
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.inner {
            Inner::Tcp(s) => s.poll_write_ready(cx),
            Inner::Unix(s) => s.poll_write_ready(cx),
        }
    }

    /// Runs `call`, a non-blocking system call on the socket that moves bytes one way, and
    /// counts what it returns as bytes read (`interest` READABLE) or written (WRITABLE), as
    /// activity too. A `WouldBlock` clears the readiness, so [`Conn::ready`] then waits.
    pub fn try_io_counted(
        &self,
        interest: Interest,
        call: impl FnOnce() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let n = match &self.inner {
            Inner::Tcp(s) => s.try_io(interest, call),
            Inner::Unix(s) => s.try_io(interest, call),
        }?;
        self.activity.touch();
        if interest.is_readable() {
            self.count_in(n);
        } else {
            self.count_out(n);
        }
        Ok(n)
    }
}

impl Conn {
    /// Sends end-of-stream to the peer (half-close) through a shared reference, for a
    /// connection whose writing side is shared.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let sock = match &self.inner {
            Inner::Tcp(s) => socket2::SockRef::from(s),
            Inner::Unix(s) => socket2::SockRef::from(s),
        };
        sock.shutdown(std::net::Shutdown::Write)
    }
}

/// Runs a read or write of up to `len` bytes through tokio's `try_io` (`call` gets a filter
/// for the system call's result) so that a short transfer clears the readiness it was made
/// under: the filter turns it into `WouldBlock` for tokio and the count is kept aside.
fn short_clears(
    len: usize,
    call: impl FnOnce(&mut dyn FnMut(io::Result<usize>) -> io::Result<usize>) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut short = 0;
    let mut filter = |res: io::Result<usize>| match res {
        Ok(n) if 0 < n && n < len => {
            short = n;
            Err(io::ErrorKind::WouldBlock.into())
        }
        other => other,
    };
    match call(&mut filter) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        other => other,
    }
}

/// One `read(2)` on a socket tokio owns, without waiting.
fn read_fd(sock: &impl std::os::fd::AsFd, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*socket2::SockRef::from(sock)).read(buf)
}

/// One `write(2)` on a socket tokio owns, without waiting.
fn write_fd(sock: &impl std::os::fd::AsFd, buf: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    (&*socket2::SockRef::from(sock)).write(buf)
}

/// The socket itself, for what tokio does not wrap (peeking at waiting bytes, socket options).
impl std::os::fd::AsFd for Conn {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.inner {
            Inner::Tcp(s) => s.as_fd(),
            Inner::Unix(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Unix(s) => Pin::new(s).poll_read(cx, buf),
        };
        if res.is_ready() {
            this.activity.touch();
            this.count_in(buf.filled().len() - before);
        }
        res
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Unix(s) => Pin::new(s).poll_write(cx, buf),
        };
        if let Poll::Ready(Ok(n)) = res {
            this.count_out(n);
        }
        if res.is_ready() {
            this.activity.touch();
        }
        res
    }

    // Vectored writes pass through: without them hyper copies every body chunk into its own
    // buffer before writing it (its "flatten" strategy), one pass more over every byte sent.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = match &mut this.inner {
            Inner::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        };
        if let Poll::Ready(Ok(n)) = res {
            this.count_out(n);
        }
        if res.is_ready() {
            this.activity.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Tcp(s) => s.is_write_vectored(),
            Inner::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_flush(cx),
            Inner::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
