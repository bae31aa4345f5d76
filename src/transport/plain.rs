//! Plain sockets: one accepted by the server framework (which counts its bytes and notes
//! its activity for the idle timeout), or a TCP or Unix connection we opened. Besides
//! tokio's reads and writes they offer readiness and raw system calls on the descriptor,
//! for the relay's splice(2).
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use crate::server::Conn;

/// A plain stream socket.
#[derive(Debug)]
pub enum Plain {
    /// Accepted by the server framework.
    Conn(Conn),
    /// A TCP connection we opened.
    Tcp(TcpStream),
    /// A Unix-domain connection we opened.
    Unix(UnixStream),
}

impl Plain {
    /// Waits until the socket may be ready for `interest`.
    pub async fn ready(&self, interest: Interest) -> io::Result<()> {
        match self {
            Plain::Conn(c) => c.ready(interest).await,
            Plain::Tcp(s) => s.ready(interest).await.map(drop),
            Plain::Unix(s) => s.ready(interest).await.map(drop),
        }
    }

    /// Runs `call`, a non-blocking system call on the socket that moves bytes one way
    /// (`interest` READABLE: in, WRITABLE: out), and returns how many it moved. A
    /// `WouldBlock` clears the readiness, so the next [`Plain::ready`] waits for the kernel.
    pub fn try_io(
        &self,
        interest: Interest,
        call: impl FnOnce() -> io::Result<usize>,
    ) -> io::Result<usize> {
        match self {
            Plain::Conn(c) => c.try_io_counted(interest, call),
            Plain::Tcp(s) => s.try_io(interest, call),
            Plain::Unix(s) => s.try_io(interest, call),
        }
    }

    /// Sends end-of-stream (FIN) and goes on reading.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let r = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
        match r {
            // The peer is gone already: nothing is left to tell.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }
}

impl AsFd for Plain {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Plain::Conn(c) => c.as_fd(),
            Plain::Tcp(s) => s.as_fd(),
            Plain::Unix(s) => s.as_fd(),
        }
    }
}

/// Connects over TCP to the first of `addr`'s addresses that answers, each within `wait`.
pub async fn dial_tcp(addr: &str, wait: Duration) -> Result<(TcpStream, SocketAddr)> {
    let candidates = crate::addr::resolve(addr).await?;
    let mut failures = Vec::new();
    for &peer in &candidates {
        let why = match timeout(wait, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                // Relayed request/response traffic must not wait on Nagle.
                let _ = stream.set_nodelay(true);
                return Ok((stream, peer));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer in {wait:?}"),
        };
        failures.push(format!("{peer}: {why}"));
    }
    match failures.as_slice() {
        [one] => bail!("cannot connect to tcp {one}"),
        _ => bail!("cannot connect to tcp {addr}: {}", failures.join("; ")),
    }
}

/// Connects to the Unix-domain stream socket at `path` within `wait`.
pub async fn dial_unix(path: &Path, wait: Duration) -> Result<UnixStream> {
    match timeout(wait, UnixStream::connect(path)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => bail!("cannot connect to unix {}: {e}", path.display()),
        Err(_) => bail!(
            "cannot connect to unix {}: no answer in {wait:?}",
            path.display()
        ),
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Plain::Conn($s) => $call,
            Plain::Tcp($s) => $call,
            Plain::Unix($s) => $call,
        }
    };
}

impl AsyncRead for Plain {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Plain {
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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
