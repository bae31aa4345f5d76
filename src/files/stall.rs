//! Noticing a dead link: a stream wrapper that fails a read or write which has waited for
//! `limit` without moving a byte.
//!
//! TCP alone would keep a connection over a pulled cable for a quarter of an hour (its
//! retransmission timeout) and a silent peer forever. The clock starts when an operation
//! first has to wait and stops whenever any byte moves either way, so a slow but live link
//! never trips it and time the program spends on its own work between operations is not
//! counted.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, failing with [`io::ErrorKind::TimedOut`] after `limit` without progress.
pub struct Stall<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether the timer runs, i.e. an operation is waiting and nothing moved since.
    armed: bool,
}

impl<S> Stall<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limit: Duration) -> Self {
        Stall {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Called when an operation returned `Pending`: starts the clock, or says it ran out.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.armed {
            self.armed = true;
            self.timer.as_mut().reset(Instant::now() + self.limit);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out: no byte moved for {} s", secs(self.limit)),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Called with an operation's result: anything ready (bytes, end, error) stops the clock.
    fn after<T>(&mut self, cx: &mut Context<'_>, res: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match res {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.waiting(cx).map(Err),
        }
    }
}

/// Seconds for a message: `2`, `0.5`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stall<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let res = Pin::new(&mut me.inner).poll_read(cx, buf);
        me.after(cx, res)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stall<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let res = Pin::new(&mut me.inner).poll_write(cx, buf);
        me.after(cx, res)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let res = Pin::new(&mut me.inner).poll_flush(cx);
        me.after(cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let res = Pin::new(&mut me.inner).poll_shutdown(cx);
        me.after(cx, res)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_and_a_talking_one_does_not() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = Stall::new(a, Duration::from_secs(2));
        let mut buf = [0u8; 4];
        b.write_all(b"ab").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 2);
        // Time spent away from the stream does not count.
        tokio::time::sleep(Duration::from_secs(5)).await;
        b.write_all(b"c").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 1);
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("no byte moved for 2 s"), "{err}");
    }
}
