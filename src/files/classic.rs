//! `--classic`: the seed's upload, byte for byte — `struct.pack('i', len(header))`, a JSON
//! header `{"file_size": N, "file_name": "...", "md5": "..."}`, then N bytes — verified with
//! MD5 and put in place under the same atomic and safety rules as native uploads. Only the
//! base name of `file_name` is kept. With a key, the seed's HMAC challenge comes first.
use std::io::{self, Write};
use std::sync::Arc;

use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio_util::codec::FramedRead;
use tracing::{info, warn};

use super::names::{self, escape};
use super::partial::Partial;
use super::protocol::FileHeader;
use super::state::State;
use crate::framing::classic;
use crate::server::Conn;

/// Largest classic header accepted.
pub const MAX_HEADER: usize = 64 * 1024;

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
        crate::log::refused("files-classic", "classic upload refused", &peer, &why);
        return Ok(());
    }
    let mut framed = FramedRead::new(conn, classic::codec(MAX_HEADER));
    loop {
        let head = match framed.next().await {
            None => return Ok(()),
            Some(Err(e)) => {
                crate::log::refused("files-classic", "bad classic header", &peer, &e);
                return Ok(());
            }
            Some(Ok(h)) => h,
        };
        let header: ClassicHeader = match serde_json::from_slice(&head) {
            Ok(h) => h,
            Err(e) => {
                crate::log::refused(
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
        let opened = names::validate(base)
            .map_err(|e| e.to_string())
            .and_then(|n| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let h = FileHeader {
                    name: n.as_str().to_string(),
                    size: header.file_size,
                    mode: 0o644,
                    mtime_ns: now.as_nanos() as i64,
                };
                Partial::open(&state.root, n.file_name(), &h, false).map_err(|e| e.to_string())
            });
        let mut p = match opened {
            Ok(p) => p,
            Err(e) => {
                warn!(name = %name, error = %e, "classic upload refused");
                return Ok(());
            }
        };
        let mut md5 = Md5::new();
        let mut left = header.file_size;
        let mut buf = vec![0u8; 64 * 1024];
        let mut failure = None;
        while left > 0 {
            let chunk: &[u8] = if !pending.is_empty() {
                let n = (pending.len() as u64).min(left) as usize;
                let b = pending.split_to(n);
                buf[..n].copy_from_slice(&b);
                &buf[..n]
            } else {
                let want = (buf.len() as u64).min(left) as usize;
                let n = conn.read(&mut buf[..want]).await?;
                if n == 0 {
                    failure = Some("connection closed before the whole file arrived".into());
                    break;
                }
                &buf[..n]
            };
            md5.update(chunk);
            left -= chunk.len() as u64;
            // A classic upload is one small stream per connection; blocking briefly on the
            // page cache here costs less than a thread hand-off per chunk.
            if let Err(e) = p.file.write_all(chunk) {
                failure = Some(format!("write failed: {e}"));
                break;
            }
        }
        let got = super::tree::hex(&md5.finalize());
        if failure.is_none() && !got.eq_ignore_ascii_case(header.md5.trim()) {
            failure = Some(format!(
                "md5 mismatch: header says {}, bytes give {got}",
                escape(&header.md5)
            ));
        }
        match failure {
            Some(e) => {
                p.discard();
                warn!(name = %name, error = %e, "classic upload discarded");
                return Ok(());
            }
            None => {
                let shown = p.display.clone();
                if let Err(e) = p.commit() {
                    warn!(name = %shown, error = %e, "classic upload not kept");
                    return Ok(());
                }
                crate::metrics::service("files-classic").stored(header.file_size);
                info!(name = %shown, size = header.file_size, "classic upload verified (md5)");
            }
        }
        framed = FramedRead::new(conn, classic::codec(MAX_HEADER));
        framed.read_buffer_mut().extend_from_slice(&pending);
    }
}
