//! The encrypted stream: after the handshake, every byte goes inside a Noise transport
//! message. A record on the wire is a 2-byte big-endian length, then that many bytes of
//! ciphertext (the plaintext and its 16-byte tag, at most 65,535 in all).
//!
//! Each direction counts its records (Noise's nonces), so a record that was changed, dropped,
//! replayed or moved fails to decrypt, and the stream ends with an error. The end of the
//! stream is a record too (an empty one): a connection cut without it is a truncation, an
//! error, never a clean end of file. Nothing is decrypted into more than one record's worth
//! of buffer.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest Noise message, tag included.
pub const MAX_RECORD: usize = 65_535;
/// The authentication tag of every record.
pub const TAG: usize = 16;
/// Largest plaintext in one record.
pub const MAX_PLAIN: usize = MAX_RECORD - TAG;
/// Ciphertext queued before a write waits for the socket to take it.
const HIGH_WATER: usize = 256 * 1024;

/// A stream whose bytes travel encrypted and authenticated.
pub struct SecureStream<S> {
    inner: S,
    noise: snow::TransportState,
    /// Ciphertext read and not yet a whole record.
    rbuf: BytesMut,
    /// Plaintext decrypted and not yet read.
    plain: BytesMut,
    /// The peer's end-of-stream record has arrived.
    read_done: bool,
    /// Sealed records, written out from `wstart` to `wend`. Its length only grows (to about
    /// [`HIGH_WATER`] plus a record on a bulk transfer), so the space a record is sealed into
    /// was zeroed once, not once per record.
    wbuf: Vec<u8>,
    /// The first byte of `wbuf` not yet written.
    wstart: usize,
    /// The end of the sealed records in `wbuf`.
    wend: usize,
    /// Our end-of-stream record is sealed.
    write_done: bool,
}

impl<S> SecureStream<S> {
    /// Wraps `inner`, whose handshake produced `noise`. Nothing may be buffered from `inner`
    /// beyond the handshake (the handshake reads exactly its messages).
    pub fn new(inner: S, noise: snow::TransportState) -> Self {
        SecureStream {
            inner,
            noise,
            rbuf: BytesMut::with_capacity(2 + MAX_RECORD),
            plain: BytesMut::new(),
            read_done: false,
            wbuf: Vec::new(),
            wstart: 0,
            wend: 0,
            write_done: false,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Ciphertext sealed and not yet written.
    fn pending(&self) -> usize {
        self.wend - self.wstart
    }

    /// Seals `plain` (at most [`MAX_PLAIN`] bytes) as one record after the pending ones.
    fn seal(&mut self, plain: &[u8]) -> io::Result<()> {
        let len = plain.len() + TAG;
        if self.wstart > 0 && self.wend + 2 + len > self.wbuf.len() {
            // Written records make room at the front (a move only after a partial write).
            self.wbuf.copy_within(self.wstart..self.wend, 0);
            self.wend -= self.wstart;
            self.wstart = 0;
        }
        let end = self.wend + 2 + len;
        if self.wbuf.len() < end {
            self.wbuf.resize(end, 0);
        }
        let record = &mut self.wbuf[self.wend..end];
        record[..2].copy_from_slice(&(len as u16).to_be_bytes());
        // A record that fails to seal is not counted in `wend`: no half-made record goes out.
        self.noise
            .write_message(plain, &mut record[2..])
            .map_err(|e| io::Error::other(format!("encryption failed: {e}")))?;
        self.wend = end;
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Writes out sealed records until none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending() > 0 {
            let sealed = &self.wbuf[self.wstart..self.wend];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, sealed))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wstart += n;
        }
        (self.wstart, self.wend) = (0, 0);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if !me.plain.is_empty() {
                let n = me.plain.len().min(buf.remaining());
                buf.put_slice(&me.plain[..n]);
                me.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            if me.read_done {
                return Poll::Ready(Ok(()));
            }
            if me.rbuf.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([me.rbuf[0], me.rbuf[1]]));
                if len < TAG {
                    return Poll::Ready(Err(invalid("a record shorter than its tag")));
                }
                if me.rbuf.len() >= 2 + len {
                    let record = &me.rbuf[2..2 + len];
                    let plain_len = len - TAG;
                    // Straight into the caller's buffer when it has room for the tag too
                    // (snow's ring cipher opens in place only then; with less, it copies the
                    // record into a fresh Vec first) and the copy there is not a slow one.
                    let direct = plain_len > 0
                        && buf.remaining() >= len
                        && !slow_copy(buf.initialize_unfilled_to(len), record);
                    if plain_len == 0 {
                        me.noise.read_message(record, &mut []).map_err(refused)?;
                        me.read_done = true;
                    } else if direct {
                        let out = buf.initialize_unfilled_to(len);
                        me.noise.read_message(record, out).map_err(refused)?;
                        buf.advance(plain_len);
                        me.rbuf.advance(2 + len);
                        return Poll::Ready(Ok(()));
                    } else {
                        // Through `plain`, placed half a page away from the record, so that
                        // neither this copy nor the one into the caller's buffer is slow.
                        me.plain.reserve(len + PAGE);
                        let pad = (record.as_ptr() as usize)
                            .wrapping_add(PAGE / 2)
                            .wrapping_sub(me.plain.as_ptr() as usize)
                            % PAGE;
                        me.plain.resize(pad + len, 0);
                        if let Err(e) = me.noise.read_message(record, &mut me.plain[pad..]) {
                            // Never hand out what failed to verify.
                            me.plain.clear();
                            return Poll::Ready(Err(refused(e)));
                        }
                        me.plain.advance(pad);
                        me.plain.truncate(plain_len);
                    }
                    me.rbuf.advance(2 + len);
                    continue;
                }
            }
            // Less than one whole record is buffered here, so this stays within two records.
            if me.rbuf.capacity() - me.rbuf.len() < 16 * 1024 {
                me.rbuf.reserve(2 + MAX_RECORD);
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut me.inner),
                cx,
                &mut me.rbuf
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection was cut without the end-of-stream record (truncated)",
                )));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.write_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if me.pending() >= HIGH_WATER {
            ready!(me.poll_drain(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Seal as many records as fit under the high-water mark, so a large write costs one
        // system call per HIGH_WATER bytes rather than one per record.
        let mut taken = 0;
        while taken < data.len() && me.pending() < HIGH_WATER {
            let take = (data.len() - taken).min(MAX_PLAIN);
            match me.seal(&data[taken..taken + take]) {
                Ok(()) => taken += take,
                // Report what was sealed; the error comes again on the next call.
                Err(_) if taken > 0 => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // Start the write now; what the socket does not take waits for the next call.
        if let Poll::Ready(Err(e)) = me.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.write_done {
            me.seal(&[])?;
            me.write_done = true;
        }
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

const PAGE: usize = 4096;

/// Whether copying `src` to `dst` would hit the slow case of `rep movsb`, which glibc's
/// memcpy uses for copies of this size: on AMD Zen 3 and 4 (glibc bug 30994; Debian 12's
/// glibc 2.36 has it) a destination 1 to 15 bytes past the source's offset within a page
/// copies at 3 GB/s instead of 50. `taojie exec`'s client met it on every record (a third
/// of its CPU time).
fn slow_copy(dst: &[u8], src: &[u8]) -> bool {
    let distance = (dst.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize) % PAGE;
    (1..16).contains(&distance)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn refused(_: snow::Error) -> io::Error {
    invalid("a record failed authentication (changed, dropped, replayed or reordered on the way)")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connected pair of transport states (NN with a PSK, as the real handshake makes).
    pub(crate) fn noise_pair() -> (snow::TransportState, snow::TransportState) {
        let psk = [9u8; 32];
        let p: snow::params::NoiseParams = crate::secure::PATTERN_PSK.parse().unwrap();
        let mut i = snow::Builder::new(p.clone())
            .psk(0, &psk)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(p)
            .psk(0, &psk)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut m, mut o) = ([0u8; 256], [0u8; 256]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut o).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut o).unwrap();
        (
            i.into_transport_mode().unwrap(),
            r.into_transport_mode().unwrap(),
        )
    }

    #[tokio::test]
    async fn bytes_cross_in_records_of_any_size_and_end_cleanly() {
        let (a, b) = tokio::io::duplex(1000);
        let (na, nb) = noise_pair();
        let (mut a, mut b) = (SecureStream::new(a, na), SecureStream::new(b, nb));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let send = async {
            a.write_all(&data[..5]).await.unwrap();
            a.write_all(&data[5..]).await.unwrap();
            a.shutdown().await.unwrap();
        };
        let recv = async {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(send, recv);
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn a_large_write_is_several_records_and_reads_of_any_size_get_every_byte() {
        let (na, nb) = noise_pair();
        let mut w = SecureStream::new(Vec::new(), na);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let n = w.write(&data).await.unwrap();
        assert_eq!(n, data.len(), "one call seals up to the high-water mark");
        w.shutdown().await.unwrap();
        let mut lens = Vec::new();
        let mut rest = &w.inner[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            lens.push(len);
            rest = &rest[2 + len..];
        }
        let last = 200_000 - 3 * MAX_PLAIN + TAG;
        assert_eq!(lens, [MAX_RECORD, MAX_RECORD, MAX_RECORD, last, TAG]);
        // Read into a buffer the size of a record's plaintext (no room for its tag), one byte,
        // then the rest.
        let mut r = SecureStream::new(std::io::Cursor::new(w.inner), nb);
        let mut first = vec![0u8; MAX_PLAIN];
        r.read_exact(&mut first).await.unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!([first, one.to_vec(), got].concat(), data);
    }

    #[tokio::test]
    async fn a_record_whose_copy_would_be_slow_goes_round_and_arrives_whole() {
        let (w, nb) = wire(2, 20_000, true).await;
        let mut r = SecureStream::new(std::io::Cursor::new(Vec::new()), nb);
        r.rbuf.extend_from_slice(&w);
        let record = r.rbuf.as_ptr() as usize + 2;
        let mut out = vec![0xaa_u8; 2 * PAGE + 20_016];
        // A destination 5 bytes past the record's offset within a page.
        let at = (record + 5).wrapping_sub(out.as_ptr() as usize) % PAGE;
        assert!(slow_copy(&out[at..], &r.rbuf[2..]));
        let n = r.read(&mut out[at..at + 20_016]).await.unwrap();
        assert_eq!(n, 20_000);
        assert!(out[at..at + n].iter().all(|&b| b == 0));
        assert!(r.plain.capacity() > 0, "it went through `plain`");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, vec![1u8; 20_000]);
    }

    /// The wire bytes of `records` records of `size` bytes each, sealed by one side.
    async fn wire(records: usize, size: usize, end: bool) -> (Vec<u8>, snow::TransportState) {
        let (na, nb) = noise_pair();
        let mut w = SecureStream::new(Vec::new(), na);
        for i in 0..records {
            w.write_all(&vec![i as u8; size]).await.unwrap();
        }
        if end {
            w.shutdown().await.unwrap();
        }
        (w.inner, nb)
    }

    async fn read_all(bytes: Vec<u8>, noise: snow::TransportState) -> io::Result<Vec<u8>> {
        let mut r = SecureStream::new(std::io::Cursor::new(bytes), noise);
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.map(|_| got)
    }

    #[tokio::test]
    async fn tampered_dropped_replayed_and_truncated_streams_are_refused() {
        let (ok, nb) = wire(3, 100, true).await;
        assert_eq!(read_all(ok.clone(), nb).await.unwrap().len(), 300);
        // One flipped bit in the second record's ciphertext.
        let (mut bad, nb) = wire(3, 100, true).await;
        bad[2 + 116 + 2 + 5] ^= 1;
        assert_eq!(
            read_all(bad, nb).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // The second record dropped.
        let (w, nb) = wire(3, 100, true).await;
        let dropped = [&w[..118], &w[236..]].concat();
        assert_eq!(
            read_all(dropped, nb).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // The first record played twice.
        let (w, nb) = wire(3, 100, true).await;
        let replayed = [&w[..118], &w[..]].concat();
        assert_eq!(
            read_all(replayed, nb).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Cut at a record boundary, without the end record.
        let (w, nb) = wire(3, 100, false).await;
        assert_eq!(
            read_all(w, nb).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A length below the tag size.
        let (_, nb) = wire(0, 0, false).await;
        let err = read_all(vec![0, 3, 1, 2, 3], nb).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
