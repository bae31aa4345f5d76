//! Transit's record pipe: each record is a 4-byte big-endian length, then a secretbox of the
//! record under this direction's key with the record's number (big-endian, 24 bytes) as its
//! nonce, nonce first. A record out of order, altered or too long ends the pipe.
use anyhow::{Result, anyhow, bail};
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, Tag, XSalsa20Poly1305};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::keys::{Key, NONCE_LEN, TAG_LEN};

/// Bytes in front of a record's plaintext on the wire: length, nonce, tag.
pub const OVERHEAD: usize = 4 + NONCE_LEN + TAG_LEN;
/// The largest record we accept (the Python client sends 16 KiB; we send 256 KiB).
pub const MAX_RECORD: usize = 16 << 20;

fn nonce_of(n: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[NONCE_LEN - 8..].copy_from_slice(&n.to_be_bytes());
    nonce
}

/// The sending half: seals records in place.
pub struct RecordWriter<W> {
    io: W,
    cipher: XSalsa20Poly1305,
    next: u64,
    /// Bytes written to the socket, framing included.
    pub wire_bytes: u64,
}

impl<W: AsyncWrite + Unpin> RecordWriter<W> {
    /// A writer sealing with `key` from record 0.
    pub fn new(io: W, key: &Key) -> Self {
        RecordWriter {
            io,
            cipher: XSalsa20Poly1305::new(&key.0.into()),
            next: 0,
            wire_bytes: 0,
        }
    }

    /// A buffer for [`send_buf`](Self::send_buf): `OVERHEAD` bytes of room, then `data`.
    pub fn buffer(capacity: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(OVERHEAD + capacity);
        b.resize(OVERHEAD, 0);
        b
    }

    /// Seals and sends `buf[OVERHEAD..]` as one record, writing the header in front of it.
    pub async fn send_buf(&mut self, buf: &mut [u8]) -> Result<()> {
        let body_len = buf.len() - 4;
        if buf.len() - OVERHEAD > MAX_RECORD {
            bail!("record too long");
        }
        let nonce = nonce_of(self.next);
        self.next += 1;
        let (head, data) = buf.split_at_mut(OVERHEAD);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", data)
            .map_err(|_| anyhow!("cannot seal a record"))?;
        head[..4].copy_from_slice(&(body_len as u32).to_be_bytes());
        head[4..4 + NONCE_LEN].copy_from_slice(&nonce);
        head[4 + NONCE_LEN..].copy_from_slice(&tag);
        self.io.write_all(buf).await?;
        self.wire_bytes += buf.len() as u64;
        Ok(())
    }

    /// Seals and sends `data` as one record.
    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        let mut buf = Self::buffer(data.len());
        buf.extend_from_slice(data);
        self.send_buf(&mut buf).await
    }

    /// Flushes and shuts the socket's sending side.
    pub async fn shutdown(&mut self) -> Result<()> {
        self.io.flush().await?;
        let _ = self.io.shutdown().await;
        Ok(())
    }
}

/// The receiving half: opens records in order.
pub struct RecordReader<R> {
    io: R,
    cipher: XSalsa20Poly1305,
    next: u64,
    /// Bytes read from the socket, framing included.
    pub wire_bytes: u64,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader opening with `key` from record 0.
    pub fn new(io: R, key: &Key) -> Self {
        RecordReader {
            io,
            cipher: XSalsa20Poly1305::new(&key.0.into()),
            next: 0,
            wire_bytes: 0,
        }
    }

    /// Reads the next record into `buf` (replacing its contents); `Ok(false)` at a clean end
    /// of stream before a record starts.
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let mut len = [0u8; 4];
        match self.io.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(NONCE_LEN + TAG_LEN..=MAX_RECORD + NONCE_LEN + TAG_LEN).contains(&len) {
            bail!("the peer sent a record of {len} bytes, outside the bounds");
        }
        let mut head = [0u8; NONCE_LEN + TAG_LEN];
        self.io.read_exact(&mut head).await?;
        if head[..NONCE_LEN] != nonce_of(self.next) {
            bail!("the peer sent a record out of order");
        }
        buf.clear();
        buf.resize(len - NONCE_LEN - TAG_LEN, 0);
        self.io.read_exact(buf).await?;
        self.wire_bytes += 4 + len as u64;
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&head[..NONCE_LEN]),
                b"",
                buf,
                Tag::from_slice(&head[NONCE_LEN..]),
            )
            .map_err(|_| anyhow!("the peer sent a record that does not decrypt"))?;
        self.next += 1;
        Ok(true)
    }

    /// The next record; an end of stream is an error.
    pub async fn recv(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        if !self.recv_into(&mut buf).await? {
            bail!("the peer closed the transit connection");
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip_and_refuse_tampering() {
        let key = Key([7; 32]);
        let (a, b) = tokio::io::duplex(64);
        let mut w = RecordWriter::new(a, &key);
        let mut r = RecordReader::new(b, &key);
        let send = tokio::spawn(async move {
            w.send(b"one").await.unwrap();
            w.send(&vec![9u8; 100_000]).await.unwrap();
            w.send(b"").await.unwrap();
        });
        assert_eq!(r.recv().await.unwrap(), b"one");
        assert_eq!(r.recv().await.unwrap(), vec![9u8; 100_000]);
        assert_eq!(r.recv().await.unwrap(), b"");
        send.await.unwrap();
        assert!(!r.recv_into(&mut Vec::new()).await.unwrap());
    }

    async fn read_bytes(bytes: Vec<u8>) -> String {
        let key = Key([7; 32]);
        let mut r = RecordReader::new(&bytes[..], &key);
        r.recv().await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn hostile_records_are_refused() {
        let key = Key([7; 32]);
        let mut good = Vec::new();
        let mut w = RecordWriter::new(&mut good, &key);
        w.send(b"hello").await.unwrap();
        w.send(b"again").await.unwrap();
        // Out of order: the second record alone.
        let first_len = 4 + NONCE_LEN + TAG_LEN + 5;
        assert!(
            read_bytes(good[first_len..].to_vec())
                .await
                .contains("out of order")
        );
        let mut flipped = good.clone();
        flipped[first_len - 1] ^= 1;
        assert!(read_bytes(flipped).await.contains("does not decrypt"));
        let huge = (u32::MAX).to_be_bytes().to_vec();
        assert!(read_bytes(huge).await.contains("outside the bounds"));
        assert!(
            read_bytes(vec![0, 0, 0, 3, 1, 2, 3])
                .await
                .contains("outside the bounds")
        );
    }

    #[test]
    fn nonces_are_big_endian_counters() {
        assert_eq!(nonce_of(0), [0; 24]);
        assert_eq!(nonce_of(258)[22..], [1, 2]);
    }
}
