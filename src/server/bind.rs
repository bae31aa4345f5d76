//! Binding listeners the way servers should: SO_REUSEADDR, a deep backlog, IPv4 or IPv6,
//! and Unix sockets that replace a stale socket file but never a live server's.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket, UnixListener};

/// Pending connections the kernel may queue; the seeds' `listen(5)` turns a burst of quick
/// connects into seconds of SYN retries.
const BACKLOG: i32 = 4096;

/// A bound stream listener: TCP or Unix-domain.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-domain stream listener and the path it owns (removed when dropped).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The protocol name used in the announce line: `tcp` or `unix`.
    pub fn proto(&self) -> &'static str {
        match self {
            Listener::Tcp(_) => "tcp",
            Listener::Unix(..) => "unix",
        }
    }

    /// The bound address as printed in the announce line.
    pub fn local_display(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, path) => path.display().to_string(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Resolves `addr` (HOST:PORT) and binds a TCP listener there.
pub async fn listen_tcp(addr: &str) -> Result<Listener> {
    Ok(Listener::Tcp(bind_tcp(
        crate::addr::resolve_one(addr).await?,
    )?))
}

/// Resolves `addr` (HOST:PORT) and binds a UDP socket there.
pub async fn listen_udp(addr: &str) -> Result<UdpSocket> {
    bind_udp(crate::addr::resolve_one(addr).await?)
}

/// Binds a TCP listener with SO_REUSEADDR and a deep backlog (and SO_REUSEPORT in
/// thread-per-core mode, so that [`serve_stream`](super::serve_stream) can bind its siblings).
pub fn bind_tcp(addr: SocketAddr) -> Result<TcpListener> {
    let listener = bind_tcp_std(addr, super::per_core::reuse_port())?;
    Ok(TcpListener::from_std(listener)?)
}

/// Binds a TCP listener as [`bind_tcp`] does, with SO_REUSEPORT if `reuse_port`, not yet
/// registered with any runtime (a thread-per-core sibling is registered by its own thread).
pub(super) fn bind_tcp_std(addr: SocketAddr, reuse_port: bool) -> Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind tcp {addr}"))?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("cannot listen on tcp {addr}"))?;
    Ok(socket.into())
}

/// Binds a UDP socket with SO_REUSEADDR.
pub fn bind_udp(addr: SocketAddr) -> Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind udp {addr}"))?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// Binds a Unix stream listener at `path`. A leftover socket file that no server answers on
/// is replaced; a live server's socket or any other file is an error.
pub fn bind_unix(path: &Path) -> Result<Listener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; not replacing it",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use by a running server", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind unix {}", path.display()))?;
    Ok(Listener::Unix(listener, path.to_path_buf()))
}

/// Binds `n - 1` `SO_REUSEPORT` siblings of `listener` for thread-per-core serving, on the
/// very address it got (its port, when it was bound to port 0); none for a Unix listener or
/// when `n` is 1. Fails if `listener` itself was bound without `SO_REUSEPORT`.
pub(super) fn reuse_port_siblings(
    listener: &Listener,
    n: usize,
) -> Result<Vec<std::net::TcpListener>> {
    let Listener::Tcp(first) = listener else {
        return Ok(Vec::new());
    };
    if n <= 1 {
        return Ok(Vec::new());
    }
    let addr = first.local_addr().context("the listener's address")?;
    (1..n).map(|_| bind_tcp_std(addr, true)).collect()
}
