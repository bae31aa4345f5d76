//! `--classic`: the seed's upload, byte for byte — `struct.pack('i', len(header))`, a JSON
//! header `{"file_size": N, "file_name": "...", "md5": "..."}`, then N bytes — verified with
//! MD5 and put in place under the same atomic and safety rules as native uploads. Only the
//! base name of `file_name` is kept. With a key, the seed's HMAC challenge comes first.
use std::io::{self, Write};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tracing::{info, warn};

use super::names::{self, RelName, escape};
use super::partial::Partial;
use super::protocol::FileHeader;
use super::state::State;
use crate::framing::classic;
use crate::server::Conn;

/// Largest classic header accepted.
pub const MAX_HEADER: usize = 64 * 1024;
/// Room made for the bytes read from the connection and handed to the writer thread.
const CHUNK: usize = 256 * 1024;

/// The seed's header.
#[derive(Debug, Deserialize)]
pub struct ClassicHeader {
    /// Bytes that follow.
    pub file_size: u64,
    /// The sender's path; only its last component is used.
    pub file_name: String,
    /// Hex MD5 of the bytes.
    pub md5: String,
}

/// One classic connection: uploads until the client closes. A bad header or a refused name
/// ends the connection (the seed's client cannot hear an answer); a file whose MD5 does not
/// match is discarded.
pub async fn handle(mut conn: Conn, state: Arc<State>) -> io::Result<()> {
    let peer = conn.peer().clone();
    if let Some(key) = &state.auth.psk {
        let hmac = crate::auth::classic_server(&mut conn, key);
        if state
            .preauth
            .handshake(&peer, "classic authentication failed", hmac)
            .counted_as("files-classic")
            .await
            .is_none()
        {
            return Ok(());
        }
    }
    if state.read_only {
        let why = "the server is read-only";
        crate::server::refused("files-classic", "classic upload refused", &peer, &why);
        return Ok(());
    }
    let mut framed = FramedRead::new(conn, classic::codec(MAX_HEADER));
    loop {
        let head = match framed.next().await {
            None => return Ok(()),
            Some(Err(e)) => {
                crate::server::refused("files-classic", "bad classic header", &peer, &e);
                return Ok(());
            }
            Some(Ok(h)) => h,
        };
        let header: ClassicHeader = match serde_json::from_slice(&head) {
            Ok(h) => h,
            Err(e) => {
                crate::server::refused(
                    "files-classic",
                    "classic header is not the JSON expected",
                    &peer,
                    &e,
                );
                return Ok(());
            }
        };
        // Keep the bytes the codec read past the header: they are the file's first bytes.
        let parts = framed.into_parts();
        let (mut conn, mut pending) = (parts.io, parts.read_buf);
        let base = header.file_name.rsplit(['/', '\\']).next().unwrap_or("");
        let name = escape(&header.file_name);
        // The lock wait, the directory lookups and statvfs run off the async workers, as do
        // the writes and fsyncs below: a few classic uploads waiting on a held file must
        // not stall every other connection of the process.
        let opened = match names::validate(base) {
            Err(e) => Err(e.to_string()),
            Ok(n) => {
                let st = state.clone();
                let size = header.file_size;
                tokio::task::spawn_blocking(move || open(&st, &n, size))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        let p = match opened {
            Ok(p) => p,
            Err(e) => {
                info!(name = %name, error = %e, "classic upload refused");
                return Ok(());
            }
        };
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let writer = tokio::task::spawn_blocking(move || write(p, rx));
        let mut left = header.file_size;
        let mut failure = None;
        let mut buf = BytesMut::new();
        // The bytes the codec read past the header are the file's first ones.
        let first = (pending.len() as u64).min(left) as usize;
        let mut next = Some(pending.split_to(first).freeze()).filter(|b| !b.is_empty());
        loop {
            if let Some(chunk) = next.take() {
                left -= chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; it says why
                }
            }
            if left == 0 {
                break;
            }
            if buf.capacity() < CHUNK / 4 {
                buf.reserve(CHUNK);
            }
            // Never past the file: what follows is the next upload's header.
            match (&mut conn).take(left).read_buf(&mut buf).await {
                Ok(0) => {
                    failure = Some("connection closed before the whole file arrived".into());
                    break;
                }
                Ok(_) => next = Some(buf.split().freeze()),
                Err(e) => {
                    failure = Some(format!("connection lost: {e}"));
                    break;
                }
            }
        }
        drop(tx);
        let (p, written) = writer
            .await
            .map_err(|e| io::Error::other(format!("writer failed: {e}")))?;
        let failure = match (failure, written) {
            (Some(f), _) => Some(f),
            (None, Err(e)) => Some(format!("write failed: {e}")),
            (None, Ok(got)) if !got.eq_ignore_ascii_case(header.md5.trim()) => Some(format!(
                "md5 mismatch: header says {}, bytes give {got}",
                escape(&header.md5)
            )),
            (None, Ok(_)) => None,
        };
        let shown = p.display.clone();
        let kept = tokio::task::spawn_blocking(move || match failure {
            Some(e) => {
                p.discard();
                Err(e)
            }
            None => p.commit().map_err(|e| format!("not kept: {e}")),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match kept {
            Err(e) => {
                warn!(name = %shown, error = %e, "classic upload discarded");
                return Ok(());
            }
            Ok(()) => {
                crate::metrics::service("files-classic").stored(header.file_size);
                info!(name = %shown, size = header.file_size, "classic upload verified (md5)");
            }
        }
        framed = FramedRead::new(conn, classic::codec(MAX_HEADER));
        framed.read_buffer_mut().extend_from_slice(&pending);
    }
}

/// Opens the partial file for a classic upload of `size` bytes as `name` (in the root: the
/// seed's client sends no directory), never over an existing file. Blocking.
fn open(state: &State, name: &RelName, size: u64) -> Result<Partial, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let h = FileHeader {
        name: name.as_str().to_string(),
        size,
        mode: 0o644,
        mtime_ns: now.as_nanos() as i64,
    };
    Partial::open(&state.root, name, &h, false).map_err(|e| e.to_string())
}

/// The writer thread: writes what arrives and hashes it; returns the partial file and the
/// hex MD5 of the bytes, or the write error (after which it takes no more).
fn write(mut p: Partial, mut rx: mpsc::Receiver<Bytes>) -> (Partial, io::Result<String>) {
    let mut md5 = Md5::new();
    while let Some(chunk) = rx.blocking_recv() {
        md5.update(&chunk);
        if let Err(e) = p.file.write_all(&chunk) {
            return (p, Err(e));
        }
    }
    (p, Ok(super::tree::hex(&md5.finalize())))
}
