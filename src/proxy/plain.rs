//! A plain HTTP request passed on (an `http://` URL, no CONNECT), one per client connection.
//! The rewritten head and exactly the body its `Content-Length` frames go to the origin
//! server, and nothing after them: a second request the client pipelined, or sent on a
//! connection it meant to keep alive, is not the origin's to see (it may be for another
//! host, and carries the client's `Proxy-Authorization`). The origin's answer comes back with
//! its head rewritten to `Connection: close` (hop-by-hop fields dropped), so the client knows
//! the connection ends with it and sends its next request on a new one (RFC 9112 section
//! 9.3.2: a client retries pipelined requests left unanswered by a closed connection). Then
//! the proxy ends its sending side and reads what the client still sends for a moment before
//! closing: a close with unread bytes would be a reset, which can destroy the answer in
//! flight.
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy_wire::http_connect::MAX_HEAD;
use crate::proxy_wire::http_forward::connection_options;
use crate::pump::{Broken, Method, Side, Totals};
use crate::server::Conn;

/// How long the client's further bytes are read (and dropped) after the answer.
const LINGER: Duration = Duration::from_secs(2);
/// How many of them at most.
const LINGER_BYTES: u64 = 1 << 20;
/// Fields of the origin's answer that end at the proxy, in lower case (with those its
/// `Connection` names).
const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "proxy-connection", "upgrade"];

/// Sends `head`, then `body` bytes of body (`early` first: what came with the head), to
/// `origin`, and relays its answer to the client; returns when the answer has ended.
pub(super) async fn exchange(
    conn: Conn,
    origin: TcpStream,
    head: Vec<u8>,
    early: Vec<u8>,
    body: u64,
    totals: &Totals,
) -> Result<Method, Broken> {
    let (mut from_origin, mut to_origin) = origin.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let up = async {
        let now = early.len().min(usize::try_from(body).unwrap_or(usize::MAX));
        to_origin
            .write_all(&head)
            .await
            .map_err(write(Side::Target))?;
        to_origin
            .write_all(&early[..now])
            .await
            .map_err(write(Side::Target))?;
        let rest = body - now as u64;
        let copied = tokio::io::copy(&mut (&mut from_client).take(rest), &mut to_origin)
            .await
            .map_err(read(Side::Client))?;
        totals
            .up
            .fetch_add((head.len() + now) as u64 + copied, Ordering::Relaxed);
        // The request is whole (or the client ended inside it, which the origin will see
        // as a short body); the answer decides the end.
        std::future::pending::<()>().await;
        Ok(())
    };
    let down = async {
        let mut buf = Vec::with_capacity(4096);
        loop {
            let Some((answer, used, interim)) = answer_head(&mut from_origin, &mut buf).await?
            else {
                return Ok(());
            };
            to_client
                .write_all(&answer)
                .await
                .map_err(write(Side::Client))?;
            totals
                .down
                .fetch_add(answer.len() as u64, Ordering::Relaxed);
            buf.drain(..used);
            if !interim {
                break;
            }
        }
        to_client
            .write_all(&buf)
            .await
            .map_err(write(Side::Client))?;
        let copied = tokio::io::copy(&mut from_origin, &mut to_client)
            .await
            .map_err(|e| Broken {
                side: Side::Target,
                verb: "relaying",
                error: e,
            })?;
        totals
            .down
            .fetch_add(buf.len() as u64 + copied, Ordering::Relaxed);
        Ok(())
    };
    let res = tokio::select! {
        r = up => r,
        r = down => r,
    };
    let mut conn = from_client.unsplit(to_client);
    if res.is_ok() {
        let _ = conn.shutdown().await;
        let (mut rest, mut sink) = ((&mut conn).take(LINGER_BYTES), tokio::io::sink());
        let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut sink)).await;
    }
    res.map(|()| Method::Copy)
}

/// Reads the origin's next answer head into `buf`; returns it rewritten, the bytes it took in
/// `buf`, and whether it is an interim (1xx) answer with another to follow. `None`: the
/// origin closed before it answered at all.
async fn answer_head(
    origin: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> Result<Option<(Vec<u8>, usize, bool)>, Broken> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(buf) {
            Ok(httparse::Status::Complete(used)) => {
                let code = res.code.unwrap_or(0);
                let interim = (100..200).contains(&code);
                return Ok(Some((rewrite(&res, interim), used, interim)));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(_) => {
                return Err(bad_answer("not an HTTP/1 answer head".into()));
            }
        }
        buf.reserve(4096);
        if origin.read_buf(buf).await.map_err(read(Side::Target))? == 0 {
            return match buf.is_empty() {
                true => Ok(None),
                false => Err(bad_answer("the answer head was cut short".into())),
            };
        }
    }
}

/// The answer's head as the client gets it: this proxy's version, no hop-by-hop fields,
/// and on the final answer `Connection: close`.
fn rewrite(res: &httparse::Response<'_, '_>, interim: bool) -> Vec<u8> {
    let named = connection_options(res.headers);
    let code = res.code.unwrap_or(0);
    let reason = res.reason.unwrap_or("");
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n").into_bytes();
    for h in res.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&name.as_str()) || named.contains(&name) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if !interim {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn read(side: Side) -> impl Fn(io::Error) -> Broken {
    move |error| Broken {
        side,
        verb: "reading",
        error,
    }
}

fn write(side: Side) -> impl Fn(io::Error) -> Broken {
    move |error| Broken {
        side,
        verb: "writing",
        error,
    }
}

fn bad_answer(why: String) -> Broken {
    Broken {
        side: Side::Target,
        verb: "reading",
        error: io::Error::new(io::ErrorKind::InvalidData, why),
    }
}
