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

/// Binds a TCP listener with SO_REUSEADDR and a deep backlog.
pub fn bind_tcp(addr: SocketAddr) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind tcp {addr}"))?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("cannot listen on tcp {addr}"))?;
    Ok(TcpListener::from_std(socket.into())?)
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
