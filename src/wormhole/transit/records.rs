//! Transit's record pipe: each record is a 4-byte big-endian length, then a secretbox of the
//! record under this direction's key with the record's number (big-endian, 24 bytes) as its
//! nonce, nonce first. A record out of order, altered or too long ends the pipe.
//!
//! Between two taojie peers (agreed in the version phase) the same frames are sealed with
//! ChaCha20-Poly1305 instead ([`Suite::ChaCha`], ring's assembly; the last 12 bytes of the
//! nonce field are its nonce) under a key derived from the direction's: pure-Rust XSalsa20 is
//! about half of a transfer's CPU.
use anyhow::{Result, anyhow, bail};
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, Tag, XSalsa20Poly1305};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::keys::{Key, NONCE_LEN, TAG_LEN, hkdf};

/// Which cipher seals the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// NaCl secretbox (XSalsa20-Poly1305), as every wormhole client has it.
    SecretBox,
    /// ChaCha20-Poly1305, between two taojie peers.
    ChaCha,
}

// One per direction of a connection: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    SecretBox(XSalsa20Poly1305),
    ChaCha(LessSafeKey),
}

impl Cipher {
    fn new(key: &Key, suite: Suite) -> Cipher {
        match suite {
            Suite::SecretBox => Cipher::SecretBox(XSalsa20Poly1305::new(&key.0.into())),
            Suite::ChaCha => {
                let k: [u8; 32] = hkdf(&key.0, b"taojie transit chacha20-poly1305");
                let k = UnboundKey::new(&CHACHA20_POLY1305, &k).expect("a 32-byte key");
                Cipher::ChaCha(LessSafeKey::new(k))
            }
        }
    }

    fn seal(&self, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        match self {
            Cipher::SecretBox(c) => c
                .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", data)
                .map(Into::into)
                .map_err(|_| anyhow!("cannot seal a record")),
            Cipher::ChaCha(k) => {
                let n = ring::aead::Nonce::try_assume_unique_for_key(&nonce[NONCE_LEN - 12..])
                    .expect("12 bytes");
                let tag = k
                    .seal_in_place_separate_tag(n, Aad::empty(), data)
                    .map_err(|_| anyhow!("cannot seal a record"))?;
                Ok(tag.as_ref().try_into().expect("16 bytes"))
            }
        }
    }

    fn open(&self, nonce: &[u8], tag: &[u8], data: &mut [u8]) -> Result<()> {
        let bad = || anyhow!("the peer sent a record that does not decrypt");
        match self {
            Cipher::SecretBox(c) => c
                .decrypt_in_place_detached(
                    Nonce::from_slice(nonce),
                    b"",
                    data,
                    Tag::from_slice(tag),
                )
                .map_err(|_| bad()),
            Cipher::ChaCha(k) => {
                let n = ring::aead::Nonce::try_assume_unique_for_key(&nonce[NONCE_LEN - 12..])
                    .expect("12 bytes");
                let tag: [u8; TAG_LEN] = tag.try_into().expect("16 bytes");
                k.open_in_place_separate_tag(n, Aad::empty(), ring::aead::Tag::from(tag), data, 0..)
                    .map(|_| ())
                    .map_err(|_| bad())
            }
        }
    }
}

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
    cipher: Cipher,
    next: u64,
    /// Bytes written to the socket, framing included.
    pub wire_bytes: u64,
}

impl<W: AsyncWrite + Unpin> RecordWriter<W> {
    /// A writer sealing with `key` in `suite` from record 0.
    pub fn new(io: W, key: &Key, suite: Suite) -> Self {
        RecordWriter {
            io,
            cipher: Cipher::new(key, suite),
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
        let tag = self.cipher.seal(&nonce, data)?;
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
    cipher: Cipher,
    next: u64,
    /// Bytes read from the socket, framing included.
    pub wire_bytes: u64,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader opening with `key` in `suite` from record 0.
    pub fn new(io: R, key: &Key, suite: Suite) -> Self {
        RecordReader {
            io,
            cipher: Cipher::new(key, suite),
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
            .open(&head[..NONCE_LEN], &head[NONCE_LEN..], buf)?;
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
        for suite in [Suite::SecretBox, Suite::ChaCha] {
            round_trip(suite).await;
        }
        // Sealed in one suite, opened in the other: refused.
        let key = Key([7; 32]);
        let mut wire = Vec::new();
        RecordWriter::new(&mut wire, &key, Suite::ChaCha)
            .send(b"x")
            .await
            .unwrap();
        let mut r = RecordReader::new(&wire[..], &key, Suite::SecretBox);
        assert!(r.recv().await.is_err());
    }

    async fn round_trip(suite: Suite) {
        let key = Key([7; 32]);
        let (a, b) = tokio::io::duplex(64);
        let mut w = RecordWriter::new(a, &key, suite);
        let mut r = RecordReader::new(b, &key, suite);
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
        let mut r = RecordReader::new(&bytes[..], &key, Suite::SecretBox);
        r.recv().await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn hostile_records_are_refused() {
        let key = Key([7; 32]);
        let mut good = Vec::new();
        let mut w = RecordWriter::new(&mut good, &key, Suite::SecretBox);
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
