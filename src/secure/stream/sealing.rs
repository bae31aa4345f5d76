//! Plaintext received straight into the records that carry it on: a relay from a plain socket
//! into the channel (either end of a `forward --to-key` / `--from-key` tunnel) reads with one
//! vectored read into the plaintext slots of several records laid out in the write buffer,
//! seals them where they lie and sends them from there. Sealing a relay's buffer with
//! [`AsyncWrite`](tokio::io::AsyncWrite) instead copies every byte once more in user space
//! (from the buffer into the records) before the cipher runs over it.
use std::io::{self, IoSliceMut};

use super::{MAX_PLAIN, MAX_RECORD, SecureStream, TAG, sealer};

/// Bytes on the wire before a record's ciphertext (its length).
const LEN: usize = 2;
/// A full record on the wire: its length, then plaintext and tag.
const FULL: usize = LEN + MAX_RECORD;
/// Records filled by one read at most.
const MAX_SLOTS: usize = 8;

impl<S> SecureStream<S> {
    /// Reads up to `room` bytes of plaintext with `read`, which gets the free plaintext slots
    /// of records (up to [`MAX_PLAIN`] bytes each, at most eight records) after those already sealed, and seals what
    /// came as records, queued to be written (by a flush, or the next write) after the ones
    /// before. Returns what `read` returned: 0 at the end of its input, an error (such as
    /// `WouldBlock`) with nothing read and nothing queued.
    pub fn seal_from(
        &mut self,
        room: usize,
        read: impl FnOnce(&mut [IoSliceMut<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.write_done {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            ));
        }
        let room = room.clamp(1, MAX_SLOTS * MAX_PLAIN);
        let records = room.div_ceil(MAX_PLAIN);
        // The last record's slot is shorter when `room` is not a multiple of MAX_PLAIN.
        let last_plain = room - (records - 1) * MAX_PLAIN;
        let span = (records - 1) * FULL + LEN + last_plain + TAG;
        if self.wstart > 0 && self.wend + span > self.wbuf.len() {
            // Written records make room at the front (a move only after a partial write).
            self.wbuf.copy_within(self.wstart..self.wend, 0);
            self.wend -= self.wstart;
            self.wstart = 0;
        }
        if self.wbuf.len() < self.wend + span {
            // Zeroed once: the buffer's length only grows.
            self.wbuf.resize(self.wend + span, 0);
        }
        let area = &mut self.wbuf[self.wend..self.wend + span];
        let n = {
            let mut records = area.chunks_mut(FULL);
            let mut slots: [IoSliceMut<'_>; MAX_SLOTS] = std::array::from_fn(|_| {
                let slot = records.next().map_or(&mut [][..], |record| {
                    let plain = (record.len() - LEN - TAG).min(MAX_PLAIN);
                    &mut record[LEN..LEN + plain]
                });
                IoSliceMut::new(slot)
            });
            read(&mut slots)?
        };
        let n = n.min(room);
        // Whole records are FULL bytes apart, so the records sealed are contiguous: the last
        // one, cut short where the read ended, takes its tag right after its plaintext.
        let (mut at, mut left) = (0, n);
        while left > 0 {
            let plain = left.min(MAX_PLAIN);
            let len = plain + TAG;
            area[at..at + LEN].copy_from_slice(&(len as u16).to_be_bytes());
            sealer(&mut self.sealer)?
                .seal(&mut area[at + LEN..at + LEN + len])
                .map_err(|e| io::Error::other(format!("encryption failed: {e}")))?;
            at += LEN + len;
            left -= plain;
        }
        self.wend += at;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Record lengths on the wire in `bytes`.
    fn lengths(mut bytes: &[u8]) -> Vec<usize> {
        let mut lens = Vec::new();
        while !bytes.is_empty() {
            let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
            lens.push(len);
            bytes = &bytes[LEN + len..];
        }
        lens
    }

    #[tokio::test]
    async fn plaintext_read_into_records_arrives_whole_between_ordinary_writes() {
        let ((sa, oa), (sb, ob)) = crate::secure::cipher::tests::cipher_pair();
        let mut w = SecureStream::new(Vec::new(), (sa, oa));
        let data: Vec<u8> = (0..380_000u32).map(|i| (i % 241) as u8).collect();
        let mut src = &data[..];
        w.write_all(b"before").await.unwrap();
        // A short read, a read of exactly two records, one larger than the room's records
        // hold (the room caps it), and the end of the input.
        let mut reads = Vec::new();
        for room in [10, 2 * MAX_PLAIN, 3 * MAX_PLAIN + 7, 1_000_000] {
            let n = w.seal_from(room, |slots| src.read_vectored(slots)).unwrap();
            reads.push(n);
            w.write_all(b"|").await.unwrap();
        }
        let rest = 380_000 - 10 - 5 * MAX_PLAIN - 7;
        assert_eq!(reads, [10, 2 * MAX_PLAIN, 3 * MAX_PLAIN + 7, rest]);
        assert_eq!(
            w.seal_from(100, |slots| src.read_vectored(slots)).unwrap(),
            0
        );
        w.shutdown().await.unwrap();
        let full = MAX_RECORD;
        let one = 1 + TAG;
        assert_eq!(
            lengths(&w.inner),
            [
                6 + TAG,
                10 + TAG,
                one,
                full,
                full,
                one,
                full,
                full,
                full,
                7 + TAG,
                one
            ]
            .into_iter()
            .chain([rest + TAG, one, TAG])
            .collect::<Vec<_>>()
        );
        let mut r = SecureStream::new(std::io::Cursor::new(w.inner), (sb, ob));
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        let mut want = b"before".to_vec();
        let mut at = 0;
        for n in reads {
            want.extend_from_slice(&data[at..at + n]);
            want.push(b'|');
            at += n;
        }
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_failed_read_queues_nothing_and_after_shutdown_nothing_is_read() {
        let ((sa, oa), _) = crate::secure::cipher::tests::cipher_pair();
        let mut w = SecureStream::new(Vec::new(), (sa, oa));
        let err = w
            .seal_from(100, |_| Err(io::ErrorKind::WouldBlock.into()))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(w.pending(), 0);
        w.shutdown().await.unwrap();
        let err = w
            .seal_from(100, |_| panic!("read after shutdown"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(lengths(&w.inner), [TAG]);
    }
}
