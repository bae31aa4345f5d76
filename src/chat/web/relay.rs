//! A WebSocket as a chat member: relayed through a socket pair whose inside end is an
//! ordinary member's connection, as the broker relays an encrypted member, so the fan-out's
//! lanes write to it like to any other. One text message in is one line (or more, if it holds
//! newlines) into the pair; each line out of the pair is one text message.
//!
//! Both directions run in one task, and neither waits on the other: a browser that is slow
//! to read never stops its own lines from reaching the room, and the broker is never kept
//! from the lines it must send. A browser that reads nothing for [`STALL`] is let go; so is
//! one that has sent nothing, not even the pong to our ping, for [`SILENT_PINGS`] pings (a
//! phone that lost its network, a tab frozen in the background), and it leaves its room.
use std::cell::RefCell;
use std::io;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tracing::debug;

use super::Web;
use crate::chat::broker;
use crate::framing::lines::{Piece, Splitter};
use crate::server::Conn;

/// The longest a browser may go without taking a message we are sending it.
const STALL: Duration = Duration::from_secs(30);
/// The longest a close we started waits for the page's own (see [`finish`]).
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Bytes the frame reader starts with (tungstenite allocates it up front, 128 KiB unless told):
/// a chat line fits, and a longer message grows it only while it is read.
const READ_BUFFER: usize = 2048;
const SCRATCH_LEN: usize = 16 * 1024;
/// Ping intervals a page may stay silent before it counts as gone: two pings unanswered, and
/// half an interval for the second pong to arrive.
const SILENT_PINGS: f64 = 2.5;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_LEN]);
}

/// The WebSocket settings for a broker whose lines are at most `max_line` bytes: small
/// buffers (a thousand idle pages cost little), and messages a few times a line long at most,
/// so a line somewhat too long is refused by the broker with a notice as over TCP, while a
/// huge one closes the socket before it is held.
pub(super) fn config(max_line: usize) -> WebSocketConfig {
    let max_message = max_message(max_line);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max_message.saturating_mul(4))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The longest message either way for a broker whose lines are at most `max_line` bytes.
fn max_message(max_line: usize) -> usize {
    max_line.saturating_mul(4).max(16 * 1024)
}

/// Runs an upgraded connection as a member of `web`'s broker until either side ends it.
pub(super) async fn member<S>(io: S, web: &Web) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config(web.max_line))).await;
    let (inside, outside) = UnixStream::pair()?;
    let session = broker::session(Conn::relayed(inside), web.broker.clone());
    let lines = Splitter::new(max_message(web.max_line));
    let (left, relayed) = tokio::join!(session, pump(ws, outside, lines, web.ping));
    if let Err(e) = relayed {
        debug!(error = %e, "web member's connection ended");
    }
    left
}

/// Carries lines both ways until the page or the broker is done; then closes the pair's end,
/// so the other side sees it.
async fn pump<S>(
    mut ws: WebSocketStream<S>,
    pair: UnixStream,
    mut lines: Splitter,
    ping: Duration,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let silent_limit = ping.mul_f64(SILENT_PINGS);
    let mut heard = Instant::now();
    let next_ping = tokio::time::sleep(ping);
    tokio::pin!(next_ping);
    // What the page said that the pair has not taken yet; while it holds anything the page
    // is not read, so a page that outpaces the broker is slowed as a TCP client is.
    let mut inbound: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            msg = ws.next(), if inbound.is_empty() => {
                heard = Instant::now();
                next_ping.as_mut().reset(heard + ping);
                match msg {
                Some(Ok(Message::Text(text))) => {
                    inbound.extend_from_slice(text.as_bytes());
                    inbound.push(b'\n');
                    write_some(&pair, &mut inbound)?;
                }
                Some(Ok(Message::Binary(_))) => {
                    finish(&mut ws, close(CloseCode::Unsupported, "text messages only")).await;
                    return Ok(());
                }
                Some(Ok(Message::Close(_))) => {
                    // RFC 6455 §5.5.1: the page's close is answered with ours before the TCP
                    // close. tungstenite has queued the answer; nothing more may be sent after
                    // it (a line the broker has for the page would fail and drop the answer),
                    // so it goes out now and the relay ends.
                    if let Err(e) = tokio::time::timeout(STALL, ws.flush()).await.unwrap_or(Ok(())) {
                        debug!(error = %e, "answering the page's close failed");
                    }
                    return Ok(());
                }
                Some(Ok(_)) => {} // ping (answered by tungstenite), pong
                Some(Err(e)) => {
                    debug!(error = %e, "websocket read failed");
                    if let Some(code) = refusal(&e) {
                        finish(&mut ws, close(code, "message too long")).await;
                    }
                    return Ok(());
                }
                None => return Ok(()),
            }},
            () = &mut next_ping => {
                if heard.elapsed() >= silent_limit {
                    debug!("page silent for {:.0} s; letting it go", heard.elapsed().as_secs_f64());
                    finish(&mut ws, close(CloseCode::Away, "no answer to pings")).await;
                    return Ok(());
                }
                match tokio::time::timeout(STALL, ws.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(io::Error::other(e)),
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "page stopped reading")),
                }
                next_ping.as_mut().reset(Instant::now() + ping);
            }
            r = pair.writable(), if !inbound.is_empty() => {
                r?;
                write_some(&pair, &mut inbound)?;
            }
            r = pair.readable() => {
                r?;
                let Some(out) = read_lines(&pair, &mut lines)? else {
                    // The broker closed the member (it quit, or was dropped).
                    finish(&mut ws, close(CloseCode::Normal, "")).await;
                    return Ok(());
                };
                let send = async {
                    for line in out {
                        ws.feed(Message::text(line)).await?;
                    }
                    ws.flush().await
                };
                match tokio::time::timeout(STALL, send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(io::Error::other(e)),
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "page stopped reading")),
                }
            }
        }
    }
}

/// Ends a connection from our side (RFC 6455 §7.1.1): sends `frame`, then reads and drops
/// what the page still sends until its answering close, for [`CLOSE_WAIT`] at most. Closing
/// the socket with the page's frames unread would reset the connection, and the reset
/// throws away what was still on its way to the page, our close frame with it: a page that
/// closed just as the broker let it go saw no close frame at all.
async fn finish<S>(ws: &mut WebSocketStream<S>, frame: CloseFrame)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, handshake).await.is_err() {
        debug!("no close from the page within {CLOSE_WAIT:?}; closing the connection");
    }
}

/// Writes what the pair takes now from the front of `buf`.
fn write_some(pair: &UnixStream, buf: &mut Vec<u8>) -> io::Result<()> {
    match pair.try_write(buf) {
        Ok(n) if n == buf.len() => *buf = Vec::new(),
        Ok(n) => {
            buf.drain(..n);
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Reads what the pair holds and returns its whole lines (without newlines), `lines` keeping
/// an unfinished one; `None` at end of stream.
fn read_lines(pair: &UnixStream, lines: &mut Splitter) -> io::Result<Option<Vec<String>>> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = match pair.try_read(buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Vec::new())),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        lines.feed(&buf[..n], |piece| match piece {
            Piece::Line(line) => out.push(String::from_utf8_lossy(line).into_owned()),
            // The broker's lines are its members' lines, bounded, and a notice or a name.
            Piece::TooLong => debug!("a line from the broker longer than a message; left out"),
        });
        Ok(Some(out))
    })
}

/// The close code for a message the page should not have sent, if that is what `e` is.
fn refusal(e: &tokio_tungstenite::tungstenite::Error) -> Option<CloseCode> {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Capacity(_) => Some(CloseCode::Size),
        Error::Utf8(_) => Some(CloseCode::Invalid),
        Error::Protocol(_) => Some(CloseCode::Protocol),
        _ => None,
    }
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
