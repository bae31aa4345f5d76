//! The channel without its socket, for a relay that does the socket's reads and writes
//! itself (the ends of a `forward` tunnel, [`crate::pump`]): the stream comes apart into the
//! socket, a reader (the receiving cipher and whatever was read ahead) and a writer (the
//! sending cipher and what is sealed). The reader opens records where the relay received
//! them, in the relay's own buffer, so a record cut at the end of a read waits there for the
//! next read instead of being copied out and completed by a read of its own.
use std::io;

use bytes::Buf;

use super::{CipherError, SecureStream, TAG, opener, sealer};

/// What a reader held when it came apart from its socket.
#[derive(Debug, Default)]
pub struct ReadAhead {
    /// Plaintext of an opened record, not yet handed out.
    pub plain: Vec<u8>,
    /// Ciphertext received after it, to be opened before anything read later.
    pub cipher: Vec<u8>,
    /// Whether the peer's end-of-stream record was among what was opened.
    pub ended: bool,
}

/// What [`SecureStream::open_records`] made of a run of ciphertext.
#[derive(Debug, Default)]
pub struct Opened {
    /// Ciphertext bytes used: whole records (a record cut at the end is left).
    pub used: usize,
    /// Plaintext bytes now at the front of the run.
    pub plain: usize,
    /// The peer's end-of-stream record came: nothing after it counts.
    pub ended: bool,
    /// A record that did not open (changed, forged, too short): the plaintext before it is
    /// good, nothing after it.
    pub error: Option<io::Error>,
}

impl<S> SecureStream<S> {
    /// The socket, a reader and a writer (each a stream with no socket).
    pub fn detach(self) -> (S, SecureStream<()>, SecureStream<()>) {
        let reader = SecureStream {
            inner: (),
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
            inner: (),
            sealer: self.sealer,
            opener: None,
            rbuf: Default::default(),
            opened: None,
            read_done: true,
            failed: None,
            read_size: 0,
            wbuf: self.wbuf,
            wstart: self.wstart,
            wend: self.wend,
            write_done: self.write_done,
        };
        (self.inner, reader, writer)
    }

    /// Hands over what was read from the socket and not handed out, leaving the reader empty.
    pub fn take_read_ahead(&mut self) -> io::Result<ReadAhead> {
        if let Some((kind, why)) = &self.failed {
            return Err(io::Error::new(*kind, why.clone()));
        }
        let mut ahead = ReadAhead::default();
        if let Some(left) = self.opened.take() {
            ahead.plain = self.rbuf[..left].to_vec();
            self.rbuf.advance(left + TAG);
        }
        if !self.read_done {
            ahead.cipher = self.rbuf.to_vec();
        }
        self.rbuf.clear();
        ahead.ended = self.read_done;
        Ok(ahead)
    }

    /// Opens the whole records at the front of `run` (ciphertext as it came from the socket,
    /// after any [`ReadAhead::cipher`]), each plaintext written by the cipher right after the
    /// one before, from the front of `run`.
    pub fn open_records(&mut self, run: &mut [u8]) -> Opened {
        let mut done = Opened::default();
        let opener = match opener(&mut self.opener) {
            Ok(o) => o,
            Err(e) => {
                done.error = Some(e);
                return done;
            }
        };
        let (n, mut at) = (run.len(), 0);
        while !self.read_done && n - at >= 2 {
            let len = usize::from(u16::from_be_bytes([run[at], run[at + 1]]));
            if len < TAG {
                done.error = Some(super::invalid(CipherError::Short));
                break;
            }
            if n - at < 2 + len {
                break;
            }
            match opener.open_within(&mut run[done.plain..at + 2 + len], at + 2 - done.plain) {
                Ok(plain) => {
                    at += 2 + len;
                    done.plain += plain;
                    self.read_done = plain == 0;
                }
                Err(e) => {
                    done.error = Some(super::invalid(e));
                    break;
                }
            }
        }
        done.used = at;
        done.ended = self.read_done;
        done
    }

    /// Sealed records not yet written.
    pub fn sealed(&self) -> &[u8] {
        &self.wbuf[self.wstart..self.wend]
    }

    /// Notes that `n` bytes of [`SecureStream::sealed`] were written.
    pub fn sent(&mut self, n: usize) {
        self.wstart = (self.wstart + n).min(self.wend);
        if self.wstart == self.wend {
            (self.wstart, self.wend) = (0, 0);
        }
    }

    /// Seals the end-of-stream record after the others: nothing is sealed after it.
    pub fn seal_end(&mut self) -> io::Result<()> {
        sealer(&mut self.sealer)?;
        if !self.write_done {
            self.seal(&[])?;
            self.write_done = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::super::MAX_PLAIN;
    use super::*;

    /// The wire bytes of `data` written in records, then the end of the stream.
    async fn wire(
        data: &[u8],
        sealer: super::super::Sealer,
        opener: super::super::Opener,
    ) -> Vec<u8> {
        let mut w = SecureStream::new(Vec::new(), (sealer, opener));
        w.write_all(&data[..7]).await.unwrap();
        w.write_all(&data[7..]).await.unwrap();
        w.shutdown().await.unwrap();
        w.inner
    }

    #[tokio::test]
    async fn records_cut_anywhere_open_in_the_callers_buffer_and_end_cleanly() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
        for piece in [1, 1000, 65_537, 100_000] {
            let ((sa, oa), (sb, ob)) = crate::secure::cipher::tests::cipher_pair();
            let bytes = wire(&data, sa, oa).await;
            let (_, mut reader, _) = SecureStream::new((), (sb, ob)).detach();
            let ahead = reader.take_read_ahead().unwrap();
            assert!(ahead.plain.is_empty() && ahead.cipher.is_empty() && !ahead.ended);
            // The relay's way: received bytes appended after what is left unopened.
            let (mut got, mut pending, mut ended) = (Vec::new(), Vec::new(), false);
            for chunk in bytes.chunks(piece) {
                pending.extend_from_slice(chunk);
                let opened = reader.open_records(&mut pending);
                assert!(opened.error.is_none());
                got.extend_from_slice(&pending[..opened.plain]);
                pending.drain(..opened.used);
                ended = opened.ended;
            }
            assert!(ended, "pieces of {piece}");
            assert!(pending.is_empty());
            assert_eq!(got, data, "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn the_plaintext_before_a_damaged_record_is_good_and_nothing_after_it() {
        let data = vec![5u8; 2 * MAX_PLAIN];
        let ((sa, oa), (sb, ob)) = crate::secure::cipher::tests::cipher_pair();
        let mut bytes = wire(&data, sa, oa).await;
        // The second record (after the 7-byte one) loses a bit.
        bytes[2 + 7 + TAG + 2 + 10] ^= 1;
        let (_, mut reader, _) = SecureStream::new((), (sb, ob)).detach();
        let opened = reader.open_records(&mut bytes);
        assert_eq!(opened.plain, 7);
        assert!(!opened.ended);
        let error = opened.error.expect("the damaged record is refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_writer_without_its_socket_hands_out_its_records_and_the_end() {
        let ((sa, oa), (sb, ob)) = crate::secure::cipher::tests::cipher_pair();
        let (_, _, mut writer) = SecureStream::new((), (sa, oa)).detach();
        let n = writer
            .seal_from(100, |slots| {
                std::io::Read::read_vectored(&mut &b"hello"[..], slots)
            })
            .unwrap();
        assert_eq!(n, 5);
        writer.seal_end().unwrap();
        let mut wire = Vec::new();
        while !writer.sealed().is_empty() {
            let take = writer.sealed().len().min(3);
            wire.extend_from_slice(&writer.sealed()[..take]);
            writer.sent(take);
        }
        let (_, mut reader, _) = SecureStream::new((), (sb, ob)).detach();
        let opened = reader.open_records(&mut wire);
        assert_eq!((&wire[..opened.plain], opened.ended), (&b"hello"[..], true));
    }
}
