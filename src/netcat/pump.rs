//! The byte pumps between stdin/stdout and one peer: a full-duplex stream bridge that
//! half-closes at stdin EOF, and the datagram loops for UDP.
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until};

use super::End;
use super::stdio::{Input, Output};

/// Bytes read from stdin at a time for a stream; also the socket read buffer's size.
pub(super) const STREAM_CHUNK: usize = 128 * 1024;
/// Largest UDP payload over IPv4 (65,535 less 28 header bytes); one stdin read makes at most
/// one such datagram.
pub(super) const MAX_DATAGRAM: usize = 65_507;
/// After the peer closes, stdin that gives nothing for this long counts as paused. A time,
/// not "no chunk queued", because a fast socket drains the queue between two reads of a file.
const STDIN_PAUSE: Duration = Duration::from_millis(200);
/// How long ending our side may take once the session is over (a TLS close_notify, a
/// Noise end record): a peer that no longer reads cannot hold the command longer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A socket read needs at least this much room; below it the buffer is replaced.
const MIN_READ_ROOM: usize = 16 * 1024;

/// Bridges a stream (TCP or Unix) with stdin and stdout until the peer closes.
///
/// At stdin EOF the write side is shut down and reading goes on: the peer's reply to a
/// request that ended with EOF still arrives. When the peer closes first, stdin that is
/// still flowing is sent on until it pauses (nothing for 200 ms) or ends, so a peer that only
/// half-closed still gets a file piped in; an idle stdin, a terminal say, does not keep the
/// command alive. A failed write to the peer ends only the sending half; the receiving half
/// decides the outcome, since a peer that reset the connection makes the read fail too.
pub(super) async fn bridge<R, W>(
    mut reader: R,
    mut writer: W,
    input: &mut Input,
    output: &Output,
) -> io::Result<End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Since when `up` has been waiting for stdin (None while it writes to the peer).
    let waiting = Cell::new(None);
    // Told once the session is over with stdin still open: `up` then ends our side too, so
    // that a TLS or Noise peer gets its close_notify or end record rather than a bare FIN.
    let stop = tokio::sync::Notify::new();
    let up = async {
        loop {
            waiting.set(Some(Instant::now()));
            let chunk = tokio::select! {
                chunk = input.next() => chunk,
                _ = stop.notified() => None,
            };
            waiting.set(None);
            match chunk {
                Some(chunk) => writer.write_all(&chunk).await?,
                None => break,
            }
        }
        writer.shutdown().await
    };
    let down = async {
        let mut buf = BytesMut::new();
        loop {
            // Received bytes leave as frozen slices of this buffer, with no copy; a new
            // buffer is taken only when the current one is nearly used up.
            if buf.capacity() < MIN_READ_ROOM {
                buf = BytesMut::with_capacity(STREAM_CHUNK);
            }
            if reader.read_buf(&mut buf).await? == 0 {
                return Ok(End::PeerClosed);
            }
            if output.write(buf.split().freeze()).await.is_err() {
                return Ok(End::StdoutClosed);
            }
        }
    };
    tokio::pin!(up, down);
    let mut sending = true;
    let end = loop {
        tokio::select! {
            _ = &mut up, if sending => sending = false,
            end = &mut down => break end,
        }
    };
    if sending && matches!(end, Ok(End::PeerClosed)) {
        loop {
            let paused_at = waiting.get().unwrap_or_else(Instant::now) + STDIN_PAUSE;
            tokio::select! {
                _ = &mut up => {
                    sending = false;
                    break;
                }
                _ = sleep_until(paused_at) => {
                    if waiting.get().is_some_and(|since| since.elapsed() >= STDIN_PAUSE) {
                        break;
                    }
                }
            }
        }
    }
    if sending {
        // Our end of the stream, briefly: a peer that stopped reading must not hold us.
        stop.notify_one();
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut up).await;
    }
    end
}

/// What one turn of a datagram loop saw.
enum Event {
    Stdin(Option<Bytes>),
    Datagram(usize, SocketAddr),
    Quiet,
}

/// Where stdin's datagrams go and whose datagrams are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Peers {
    /// A connected socket: its one peer (`taojie connect --udp`).
    Connected,
    /// The first sender, once there is one; others are ignored (`taojie listen --udp`).
    First(Option<SocketAddr>),
    /// The latest sender (`taojie listen --udp --keep-open`); never falls quiet.
    Latest(Option<SocketAddr>),
}

impl Peers {
    fn current(self) -> Option<SocketAddr> {
        match self {
            Peers::Connected => None,
            Peers::First(p) | Peers::Latest(p) => p,
        }
    }

    fn ready(self) -> bool {
        self == Peers::Connected || self.current().is_some()
    }
}

/// Runs a UDP session: each stdin chunk is one datagram to the peer, each datagram from it
/// goes to stdout. After stdin EOF it ends once `linger` passes with no datagram (except
/// with [`Peers::Latest`], which serves until stdout closes or an error).
pub(super) async fn datagrams(
    socket: &UdpSocket,
    mut peers: Peers,
    input: &mut Input,
    output: &Output,
    linger: Duration,
) -> io::Result<End> {
    // Room for the largest IPv6 payload too, so no datagram is cut short.
    let mut buf = vec![0u8; u16::MAX as usize + 1];
    let mut quiet_at = Instant::now() + linger;
    let lingers = !matches!(peers, Peers::Latest(_));
    loop {
        // Stdin waits for a peer to send to; the quiet clock runs only once stdin has ended
        // and there is someone whose silence means something.
        let event = tokio::select! {
            chunk = input.next(), if !input.at_eof() && peers.ready() => Event::Stdin(chunk),
            got = recv(socket, peers, &mut buf) => {
                let (n, from) = got?;
                Event::Datagram(n, from)
            }
            _ = sleep_until(quiet_at), if lingers && input.at_eof() && peers.ready() => Event::Quiet,
        };
        match event {
            Event::Stdin(Some(chunk)) => {
                match peers.current() {
                    Some(peer) => socket.send_to(&chunk, peer).await?,
                    None => socket.send(&chunk).await?,
                };
            }
            Event::Stdin(None) => quiet_at = Instant::now() + linger,
            Event::Datagram(n, from) => {
                match &mut peers {
                    Peers::Connected => {}
                    Peers::First(p @ None) | Peers::Latest(p) => *p = Some(from),
                    Peers::First(Some(first)) if *first != from => continue,
                    Peers::First(Some(_)) => {}
                }
                quiet_at = Instant::now() + linger;
                // A copy of exactly the datagram: small datagrams must not pin 64 KiB each.
                if output
                    .write(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .is_err()
                {
                    return Ok(End::StdoutClosed);
                }
            }
            Event::Quiet => return Ok(End::PeerClosed),
        }
    }
}

/// Receives one datagram and its sender.
async fn recv(socket: &UdpSocket, peers: Peers, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match peers {
        Peers::Connected => {
            let n = socket.recv(buf).await?;
            Ok((n, socket.peer_addr()?))
        }
        _ => socket.recv_from(buf).await,
    }
}
