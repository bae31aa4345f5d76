//! The transit relay: a client says `please relay TOKEN for side SIDE\n` (or, from old
//! clients, `please relay TOKEN\n`); the first connection with a token waits, the next with
//! the same token and another side is its partner. Both get `ok\n`, then every byte one sends
//! is written to the other, until either closes.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::server::Conn;

/// How long the handshake line may take to arrive.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest handshake line.
const MAX_HELLO: usize = 160;
/// The splice's buffer each way.
const BUF: usize = 256 << 10;

/// A waiting connection: its side and where to hand it its partner.
struct Waiter {
    side: Option<String>,
    id: u64,
    partner: oneshot::Sender<Conn>,
}

/// Connections waiting for their partner, by token.
#[derive(Default)]
pub struct Pairing {
    waiting: Mutex<HashMap<String, Vec<Waiter>>>,
}

/// Parses the handshake line (without its newline): the token, and the side if given.
pub fn parse_hello(line: &[u8]) -> Option<(String, Option<String>)> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("please relay ")?;
    let (token, side) = match rest.split_once(" for side ") {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(token, 64) || side.is_some_and(|s| !hex(s, 16)) {
        return None;
    }
    Some((token.to_string(), side.map(str::to_string)))
}

/// Reads the handshake line byte by byte (so nothing after it is consumed).
async fn read_hello(conn: &mut Conn) -> Option<Vec<u8>> {
    let mut line = Vec::with_capacity(MAX_HELLO);
    let mut byte = [0u8; 1];
    loop {
        if conn.read(&mut byte).await.ok()? == 0 || line.len() >= MAX_HELLO {
            return None;
        }
        if byte[0] == b'\n' {
            return Some(line);
        }
        line.push(byte[0]);
    }
}

impl Pairing {
    /// Serves one transit connection: handshake, pairing, splice (at most `max_bytes` each
    /// way when given).
    pub async fn serve(
        self: Arc<Self>,
        mut conn: Conn,
        max_bytes: Option<u64>,
    ) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(Some(line)) = tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut conn)).await
        else {
            return Ok(());
        };
        let Some((token, side)) = parse_hello(&line) else {
            let _ = conn.write_all(b"bad handshake\n").await;
            return Ok(());
        };
        let rx = {
            let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let list = w.entry(token.clone()).or_default();
            // Partners: a different side, or either without one.
            let pos = list
                .iter()
                .position(|x| x.side.is_none() || side.is_none() || x.side != side);
            match pos {
                Some(i) => {
                    let first = list.remove(i);
                    if list.is_empty() {
                        w.remove(&token);
                    }
                    drop(w);
                    // The first connection's task does the splicing; if it is gone, so be it.
                    let _ = first.partner.send(conn);
                    return Ok(());
                }
                None => {
                    let (tx, rx) = oneshot::channel();
                    list.push(Waiter {
                        side,
                        id,
                        partner: tx,
                    });
                    rx
                }
            }
        };
        // Wait for the partner, or for this client to leave (EOF) or speak out of turn.
        let mut probe = [0u8; 1];
        let partner = tokio::select! {
            p = rx => p.ok(),
            _ = conn.read(&mut probe) => None,
        };
        let Some(mut partner) = partner else {
            let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(list) = w.get_mut(&token) {
                list.retain(|x| x.id != id);
                if list.is_empty() {
                    w.remove(&token);
                }
            }
            return Ok(());
        };
        conn.write_all(b"ok\n").await?;
        partner.write_all(b"ok\n").await?;
        splice(conn, partner, max_bytes).await
    }

    /// Connections waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// Copies both ways until either side closes (then both are closed: no half-close).
async fn splice(a: Conn, b: Conn, max_bytes: Option<u64>) -> std::io::Result<()> {
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let limit = max_bytes.unwrap_or(u64::MAX);
    let one = async move {
        let mut buf = vec![0u8; BUF];
        let mut n = 0u64;
        loop {
            let k = ar.read(&mut buf).await?;
            n += k as u64;
            if k == 0 || n > limit {
                return std::io::Result::Ok(());
            }
            bw.write_all(&buf[..k]).await?;
        }
    };
    let other = async move {
        let mut buf = vec![0u8; BUF];
        let mut n = 0u64;
        loop {
            let k = br.read(&mut buf).await?;
            n += k as u64;
            if k == 0 || n > limit {
                return std::io::Result::Ok(());
            }
            aw.write_all(&buf[..k]).await?;
        }
    };
    // The first direction to end ends both.
    tokio::select! {
        r = one => r,
        r = other => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lines() {
        let t = "a".repeat(64);
        assert_eq!(
            parse_hello(format!("please relay {t} for side 0123456789abcdef").as_bytes()),
            Some((t.clone(), Some("0123456789abcdef".into())))
        );
        assert_eq!(
            parse_hello(format!("please relay {t}").as_bytes()),
            Some((t.clone(), None))
        );
        for bad in [
            "please relay short".to_string(),
            format!("please relay {t} for side xyz"),
            format!("PLEASE relay {t}"),
            format!("please relay {}", "g".repeat(64)),
        ] {
            assert!(parse_hello(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
