//! The receive loop for datagram (UDP) services: one request datagram in, at most one reply out.
use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tracing::debug;

/// Largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes); the receive buffer
/// holds one more byte so nothing is ever silently truncated.
pub const MAX_DATAGRAM: usize = 65_507;

/// A service that answers each datagram on its own, with no per-peer state in the framework.
pub trait DatagramService: Send + 'static {
    /// Answers one request from `peer`; `None` sends nothing back. The request buffer may be
    /// changed in place and returned borrowed, which saves a copy.
    fn respond<'a>(&mut self, request: &'a mut [u8], peer: SocketAddr) -> Option<Cow<'a, [u8]>>;
}

/// Serves `socket` with `service` until `shutdown` resolves. Errors on one datagram (a peer
/// that went away, a reply too large to send) are logged and the loop goes on.
pub async fn serve_datagram<S: DatagramService>(
    socket: UdpSocket,
    mut service: S,
    shutdown: impl Future<Output = ()>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    tokio::pin!(shutdown);
    loop {
        let (len, peer) = tokio::select! {
            _ = &mut shutdown => return,
            res = socket.recv_from(&mut buf) => match res {
                Ok(got) => got,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        if let Some(reply) = service.respond(&mut buf[..len], peer)
            && let Err(e) = socket.send_to(&reply, peer).await
        {
            debug!(%peer, error = %e, "udp reply failed");
        }
    }
}
