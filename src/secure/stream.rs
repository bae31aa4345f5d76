//! The encrypted stream: after the handshake, every byte goes inside a Noise transport
//! message. A record on the wire is a 2-byte big-endian length, then that many bytes of
//! ciphertext (the plaintext and its 16-byte tag, at most 65,535 in all).
//!
//! Each direction counts its records (Noise's nonces), so a record that was changed, dropped,
//! replayed or moved fails to decrypt, and the stream ends with an error. The end of the
//! stream is a record too (an empty one): a connection cut without it is a truncation, an
//! error, never a clean end of file. Only verified plaintext is handed out.
//!
//! Reading: on bulk data into a large buffer (a framed reader waiting for a 1 MiB frame), the
//! ciphertext is received straight into the caller's buffer and each record opened there, the
//! cipher writing its plaintext just after the previous one's; a record cut at the end of a
//! read waits in the stream's own buffer, which is completed by a read of exactly what it
//! lacks. Otherwise records are read ahead into the stream's buffer (at most [`READ_AHEAD`]
//! plus one record) and handed out from there. Writing: a write is sealed into the stream's
//! write buffer, up to 256 KiB per system call; bytes built in [`Records`] are sealed
//! where they lie ([`SecureStream::write_records`]), and a relay reads its socket straight
//! into records in the write buffer ([`SecureStream::seal_from`], in `sealing`).
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use super::cipher::{CipherError, Opener, Sealer};
pub use super::cipher::{MAX_PLAIN, MAX_RECORD, TAG};
use super::records::Records;
pub use detached::{Opened, ReadAhead};
/// Ciphertext queued before a write waits for the socket to take it.
const HIGH_WATER: usize = 256 * 1024;
/// Ciphertext asked of the socket in one read once a stream carries bulk data (a read has
/// returned a whole record's worth or more): several records per system call. At 64 KiB a
/// read, the files server made 3.7 times as many `recv`s for a `put` as plaintext taojie.
pub const READ_AHEAD: usize = 256 * 1024;

/// Room in a reader's buffer above which, on bulk data, ciphertext is received straight into
/// it and each record opened there, its plaintext moved to the front by the cipher itself:
/// the plaintext crosses memory once, as in a plaintext connection.
const DIRECT_MIN: usize = 2 * (2 + MAX_RECORD);

/// A stream whose bytes travel encrypted and authenticated.
pub struct SecureStream<S> {
    inner: S,
    /// The sending cipher (not in the read half of [`SecureStream::into_split`]).
    sealer: Option<Sealer>,
    /// The receiving cipher (not in the write half).
    opener: Option<Opener>,
    /// Ciphertext read from `inner`; when `opened` is set, its front is an opened record's
    /// plaintext not yet read, followed by that record's tag.
    rbuf: BytesMut,
    /// Plaintext bytes at the front of `rbuf` (from an opened record) not yet read.
    opened: Option<usize>,
    /// The peer's end-of-stream record has arrived.
    read_done: bool,
    /// Why reading failed for good (a record that did not open): said on every read after.
    failed: Option<(io::ErrorKind, String)>,
    /// Room made in `rbuf` for a read: a record's worth, [`READ_AHEAD`] for bulk data.
    read_size: usize,
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
    /// Wraps `inner`, whose handshake produced the two ciphers. Nothing may be buffered from
    /// `inner` beyond the handshake (the handshake reads exactly its messages).
    pub fn new(inner: S, (sealer, opener): (Sealer, Opener)) -> Self {
        SecureStream {
            inner,
            sealer: Some(sealer),
            opener: Some(opener),
            rbuf: BytesMut::new(),
            opened: None,
            read_done: false,
            failed: None,
            read_size: 2 + MAX_RECORD,
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

    /// Two halves that read and write independently (two tasks can own them): the read half
    /// has the receiving cipher and what was read ahead, the write half the sending cipher and
    /// what is queued. Unlike `tokio::io::split` of the whole stream, the write half can
    /// [`SecureStream::write_records`].
    pub fn into_split(self) -> (SecureStream<ReadHalf<S>>, SecureStream<WriteHalf<S>>)
    where
        S: AsyncRead + AsyncWrite,
    {
        let (r, w) = tokio::io::split(self.inner);
        let reader = SecureStream {
            inner: r,
            sealer: None,
            opener: self.opener,
            rbuf: self.rbuf,
            opened: self.opened,
            read_done: self.read_done,
            failed: self.failed,
            read_size: self.read_size,
            wbuf: Vec::new(),
            wstart: 0,
            wend: 0,
            write_done: true,
        };
        let writer = SecureStream {
            inner: w,
            sealer: self.sealer,
            opener: None,
            rbuf: BytesMut::new(),
            opened: None,
            read_done: true,
            failed: None,
            read_size: 0,
            wbuf: self.wbuf,
            wstart: self.wstart,
            wend: self.wend,
            write_done: self.write_done,
        };
        (reader, writer)
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
        record[2..2 + plain.len()].copy_from_slice(plain);
        // A record that fails to seal is not counted in `wend`: no half-made record goes out.
        sealer(&mut self.sealer)?
            .seal(&mut record[2..])
            .map_err(|e| io::Error::other(format!("encryption failed: {e}")))?;
        self.wend = end;
        Ok(())
    }

    /// Opens the whole record at the front of `rbuf`, if one is there: straight into `buf`
    /// when the record fits there whole (copied in, then opened in place), else where it
    /// lies in `rbuf`, for [`Self::take_opened`] to hand out.
    fn open_next(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<bool> {
        if self.rbuf.len() < 2 {
            return Ok(false);
        }
        let len = usize::from(u16::from_be_bytes([self.rbuf[0], self.rbuf[1]]));
        if len < TAG {
            return Err(invalid(CipherError::Short));
        }
        if self.rbuf.len() < 2 + len {
            return Ok(false);
        }
        self.rbuf.advance(2);
        let opened = if len > TAG
            && buf.remaining() >= len
            && !slow_copy(unfilled(buf), self.rbuf.as_ptr() as usize)
        {
            let start = buf.filled().len();
            buf.put_slice(&self.rbuf[..len]);
            self.rbuf.advance(len);
            let opened = opener(&mut self.opener)?.open(&mut buf.filled_mut()[start..]);
            // Only what verified stays filled.
            buf.set_filled(start + *opened.as_ref().unwrap_or(&0));
            opened.map(|_| None)
        } else {
            opener(&mut self.opener)?
                .open(&mut self.rbuf[..len])
                .map(Some)
        };
        match opened {
            Ok(None) => {}
            Ok(Some(0)) => {
                self.rbuf.advance(TAG);
                self.read_done = true;
            }
            Ok(Some(n)) => self.opened = Some(n),
            // Never hand out what failed to verify.
            Err(e) => {
                self.rbuf.clear();
                return Err(invalid(e));
            }
        }
        Ok(true)
    }

    /// Copies opened plaintext into `buf`; the record's tag goes once all of it is read.
    fn take_opened(&mut self, left: usize, buf: &mut ReadBuf<'_>) {
        let n = left.min(buf.remaining());
        copy_into(buf, &self.rbuf[..n]);
        if n == left {
            self.rbuf.advance(n + TAG);
            self.opened = None;
        } else {
            self.rbuf.advance(n);
            self.opened = Some(left - n);
        }
    }
}

impl<S: AsyncRead + Unpin> SecureStream<S> {
    /// Bytes still missing from the record begun in `rbuf` (its length first).
    fn record_rest(&self) -> usize {
        match self.rbuf.len() {
            n @ 0..2 => 2 - n,
            n => 2 + usize::from(u16::from_be_bytes([self.rbuf[0], self.rbuf[1]])) - n,
        }
    }

    /// Receives straight into `buf`'s free space and opens every whole record there, each
    /// plaintext written by the cipher right after the one before; a record begun at the
    /// end goes to `rbuf`. A record that does not open stops it, with what came before kept.
    fn poll_read_direct(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let opener = opener(&mut self.opener)?;
        let n = ready!(poll_read_unfilled(Pin::new(&mut self.inner), cx, buf))?;
        if n == 0 {
            return Poll::Ready(Err(truncated()));
        }
        // Initialised now: this hands out the received bytes without writing to them.
        let area = buf.initialize_unfilled_to(n);
        // `at`: the next record's start; `to`: the end of the plaintext opened so far.
        let (mut at, mut to) = (0, 0);
        while n - at >= 2 {
            let len = usize::from(u16::from_be_bytes([area[at], area[at + 1]]));
            if len < TAG {
                self.failed = Some((io::ErrorKind::InvalidData, CipherError::Short.to_string()));
                break;
            }
            if n - at < 2 + len {
                break;
            }
            match opener.open_within(&mut area[to..at + 2 + len], at + 2 - to) {
                Ok(plain) => {
                    at += 2 + len;
                    to += plain;
                    if plain == 0 {
                        self.read_done = true;
                        break;
                    }
                }
                Err(e) => {
                    self.failed = Some((io::ErrorKind::InvalidData, e.to_string()));
                    break;
                }
            }
        }
        if self.failed.is_none() && !self.read_done {
            self.rbuf.extend_from_slice(&area[at..n]);
        }
        buf.advance(to);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Sends `records`, after whatever was written before them: sealed where they lie. Leaves
    /// them empty, for the sender's next bytes.
    pub async fn write_records(&mut self, records: &mut Records) -> io::Result<()> {
        if self.write_done {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            ));
        }
        std::future::poll_fn(|cx| self.poll_drain(cx)).await?;
        let wire = records.seal(sealer(&mut self.sealer)?)?;
        self.inner.write_all(wire).await?;
        records.clear();
        Ok(())
    }

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
        let before = buf.filled().len();
        // Hands out as many buffered records as `buf` takes, reading only when none is left.
        while buf.remaining() > 0 {
            if let Some((kind, why)) = &me.failed {
                if buf.filled().len() > before {
                    // What came before the bad record first; the error on the next read.
                    break;
                }
                return Poll::Ready(Err(io::Error::new(*kind, why.clone())));
            }
            if let Some(left) = me.opened {
                me.take_opened(left, buf);
                continue;
            }
            if me.read_done {
                break;
            }
            match me.open_next(buf) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    me.failed = Some((e.kind(), e.to_string()));
                    continue;
                }
            }
            if buf.filled().len() > before {
                break;
            }
            if me.read_size == READ_AHEAD && buf.remaining() >= DIRECT_MIN {
                if me.rbuf.is_empty() {
                    ready!(me.poll_read_direct(cx, buf))?;
                } else {
                    // Only what completes the record begun in `rbuf`: the rest comes direct.
                    let want = me.record_rest();
                    me.rbuf.reserve(want);
                    let limited = &mut (&mut me.rbuf).limit(want);
                    let n = ready!(tokio_util::io::poll_read_buf(
                        Pin::new(&mut me.inner),
                        cx,
                        limited
                    ))?;
                    if n == 0 {
                        return Poll::Ready(Err(truncated()));
                    }
                }
                continue;
            }
            // Less than one whole record is buffered here, so this stays within
            // READ_AHEAD and a record.
            if me.rbuf.capacity() - me.rbuf.len() < me.read_size / 4 {
                me.rbuf.reserve(me.read_size);
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut me.inner),
                cx,
                &mut me.rbuf
            ))?;
            if n == 0 {
                return Poll::Ready(Err(truncated()));
            }
            if n > MAX_RECORD {
                me.read_size = READ_AHEAD;
            }
        }
        Poll::Ready(Ok(()))
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
/// Copies under glibc's `rep movsb` threshold (8 KiB with AVX-512) take its vector loop.
const SHORT_COPY: usize = 4096;

/// Appends `src` to `buf`. Where glibc's memcpy would take the slow case of `rep movsb` (on
/// AMD Zen 3 and 4, glibc bug 30994; Debian 12's glibc 2.36 has it: a destination 1 to 15
/// bytes past the source's offset within a page copies at 3 GB/s instead of 50, which cost
/// `taojie exec`'s client a third of its CPU time), it copies a page at a time, which glibc
/// does with vector moves.
fn copy_into(buf: &mut ReadBuf<'_>, src: &[u8]) {
    if slow_copy(unfilled(buf), src.as_ptr() as usize) {
        for piece in src.chunks(SHORT_COPY) {
            buf.put_slice(piece);
        }
    } else {
        buf.put_slice(src);
    }
}

/// Reads from `reader` into `buf`'s unfilled part and marks what came initialised but not
/// filled; returns how many bytes came. Zeroing the room first (a `ReadBuf` may be
/// uninitialised memory) would cost as much as the copy the direct path saves, since a read
/// may bring far less than the room it is given: the one unsafe line of this module, as in
/// tokio's own `Take`.
#[allow(unsafe_code)]
fn poll_read_unfilled<R: AsyncRead>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<usize>> {
    let n = {
        let mut free = buf.take(buf.remaining());
        let at = free.filled().as_ptr();
        ready!(reader.poll_read(cx, &mut free))?;
        assert_eq!(at, free.filled().as_ptr(), "a reader swapped its buffer");
        free.filled().len()
    };
    // SAFETY: `free` covered exactly `buf`'s unfilled part, and its first `n` bytes were
    // filled, so initialised, by the reader.
    unsafe { buf.assume_init(n) };
    Poll::Ready(Ok(n))
}

/// The address the next byte put into `buf` goes to.
fn unfilled(buf: &ReadBuf<'_>) -> usize {
    buf.filled().as_ptr() as usize + buf.filled().len()
}

/// Whether a copy from `src` to `dst` of many pages would hit `rep movsb`'s slow case.
fn slow_copy(dst: usize, src: usize) -> bool {
    (1..16).contains(&(dst.wrapping_sub(src) % PAGE))
}

/// The sending cipher, which only the read half of a split stream lacks.
fn sealer(sealer: &mut Option<Sealer>) -> io::Result<&mut Sealer> {
    sealer
        .as_mut()
        .ok_or_else(|| io::Error::other("the read half of a stream does not write"))
}

/// The receiving cipher, which only the write half of a split stream lacks.
fn opener(opener: &mut Option<Opener>) -> io::Result<&mut Opener> {
    opener
        .as_mut()
        .ok_or_else(|| io::Error::other("the write half of a stream does not read"))
}

/// The error of a connection cut without the end-of-stream record.
pub fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection was cut without the end-of-stream record (truncated)",
    )
}

fn invalid(e: CipherError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

mod detached;
mod sealing;
#[cfg(test)]
mod tests;
