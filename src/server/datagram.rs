//! The receive loop for datagram (UDP) services: one request datagram in, at most one reply
//! out ([`serve_datagram`]), or the datagrams alone ([`Datagrams`]) for a service that answers
//! otherwise.
use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

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

/// Serves `socket` with `service` until `shutdown` resolves, counting its bytes under the
/// service called `name`. Errors on one datagram (a peer
/// that went away, a reply too large to send) are logged and the loop goes on.
pub async fn serve_datagram<S: DatagramService>(
    name: &'static str,
    socket: UdpSocket,
    mut service: S,
    shutdown: impl Future<Output = ()>,
) {
    let meter = crate::metrics::service(name);
    let mut incoming = Datagrams::new(name, &socket, shutdown);
    while let Some((request, peer)) = incoming.next().await {
        if let Some(reply) = service.respond(request, peer) {
            match socket.send_to(&reply, peer).await {
                Ok(n) => {
                    meter.bytes_out.inc_by(n as u64);
                }
                Err(e) => debug!(%peer, error = %e, "udp reply failed"),
            }
        }
    }
}

/// The datagrams arriving on a socket, one at a time, until a shutdown future resolves: the
/// receive loop of [`serve_datagram`], for services that answer otherwise than with one reply
/// (the chat hub relays each datagram to many peers).
pub struct Datagrams<'s, F> {
    socket: &'s UdpSocket,
    meter: &'static crate::metrics::Service,
    buf: Vec<u8>,
    shutdown: Pin<Box<F>>,
}

impl<'s, F: Future<Output = ()>> Datagrams<'s, F> {
    /// Receives on `socket` until `shutdown` resolves, counting the bytes received under
    /// the service called `name`.
    pub fn new(name: &'static str, socket: &'s UdpSocket, shutdown: F) -> Self {
        Datagrams {
            socket,
            meter: crate::metrics::service(name),
            buf: vec![0u8; MAX_DATAGRAM + 1],
            shutdown: Box::pin(shutdown),
        }
    }

    /// The next datagram and its sender; `None` once shutdown has come. A failed receive (an
    /// ICMP error a peer caused, say) is logged and skipped.
    pub async fn next(&mut self) -> Option<(&mut [u8], SocketAddr)> {
        loop {
            tokio::select! {
                _ = &mut self.shutdown => return None,
                res = self.socket.recv_from(&mut self.buf) => match res {
                    Ok((len, peer)) => {
                        self.meter.bytes_in.inc_by(len as u64);
                        return Some((&mut self.buf[..len], peer));
                    }
                    Err(e) => debug!(error = %e, "udp receive failed"),
                },
            }
        }
    }
}
