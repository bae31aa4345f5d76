//! Plaintext written straight into the records that will carry it: a sender that builds its
//! bytes in a [`Records`] (a file's contents read from disk, a command's output read from its
//! socket) has them sealed where they lie and sent as they are, instead of copied into the
//! stream's write buffer first. On 1 GiB that copy was a tenth of the `put` client's CPU time
//! and a quarter of the exec server's.
use std::io::{self, Read};

use bytes::BufMut;
use bytes::buf::Limit;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::cipher::{MAX_PLAIN, Sealer, TAG};

/// Bytes on the wire before a record's ciphertext (its length).
const LEN: usize = 2;
/// Plaintext in a full record here: 32 KiB, a power-of-two number of BLAKE3's 1 KiB chunks,
/// so a file read into records and hashed piece by piece keeps BLAKE3 on its widest path (it
/// hashes whole power-of-two subtrees of chunks at once). With 63 KiB pieces the `put` client
/// spent 0.07 s more CPU per GiB on hashing, with [`MAX_PLAIN`]-sized ones 0.06 s.
pub const RECORD_PLAIN: usize = 32 * 1024;
const _: () = assert!(RECORD_PLAIN <= MAX_PLAIN);

/// Plaintext laid out as records: each a 2-byte length, up to [`RECORD_PLAIN`] bytes of
/// plaintext, and room for the tag.
pub struct Records {
    /// Plaintext in a full record.
    record: usize,
    buf: Vec<u8>,
    /// Where each record starts in `buf`; the last one is being filled.
    starts: Vec<usize>,
    /// Plaintext bytes in all.
    plain: usize,
}

impl Records {
    /// An empty set with room for `plain` bytes of plaintext, in records of
    /// [`RECORD_PLAIN`].
    pub fn with_capacity(plain: usize) -> Self {
        Self::with_records_of(RECORD_PLAIN, plain)
    }

    /// An empty set with room for `plain` bytes of plaintext, in records of `record` bytes
    /// (at most [`MAX_PLAIN`]; larger records mean fewer, larger reads into them).
    pub fn with_records_of(record: usize, plain: usize) -> Self {
        assert!(
            (1..=MAX_PLAIN).contains(&record),
            "a record holds 1 to MAX_PLAIN bytes"
        );
        let mut records = Records {
            record,
            buf: Vec::new(),
            starts: Vec::new(),
            plain: 0,
        };
        records.clear();
        records.reserve(plain);
        records
    }

    /// Empties the set, keeping its memory (a sender reuses one for its next bytes rather
    /// than have the allocator hand fresh, unmapped pages each time).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; LEN]);
        self.starts.clear();
        self.starts.push(0);
        self.plain = 0;
    }

    /// Makes room for `plain` more bytes of plaintext.
    pub fn reserve(&mut self, plain: usize) {
        let records = plain.div_ceil(self.record) + 1;
        self.buf.reserve(plain + records * (LEN + TAG));
    }

    /// Plaintext bytes held.
    pub fn len(&self) -> usize {
        self.plain
    }

    /// Whether no plaintext is held.
    pub fn is_empty(&self) -> bool {
        self.plain == 0
    }

    /// Plaintext bytes in the record being filled.
    fn open(&self) -> usize {
        self.buf.len() - self.starts[self.starts.len() - 1] - LEN
    }

    /// Ends the record being filled (if it holds anything): what comes next starts a new one.
    pub fn end_record(&mut self) {
        if self.open() > 0 {
            self.buf.extend_from_slice(&[0; TAG]);
            self.starts.push(self.buf.len());
            self.buf.extend_from_slice(&[0; LEN]);
        }
    }

    /// Room left in the record being filled, after ending it if it is full.
    fn room(&mut self) -> usize {
        if self.open() == self.record {
            self.end_record();
        }
        self.record - self.open()
    }

    /// The first `n` bytes of plaintext, to fill in a header once what follows it is known
    /// (`n` no more than the first record holds).
    pub fn head_mut(&mut self, n: usize) -> &mut [u8] {
        let first_end = self.starts.get(1).map_or(self.buf.len(), |next| next - TAG);
        assert!(LEN + n <= first_end, "the first record holds fewer bytes");
        &mut self.buf[LEN..LEN + n]
    }

    /// Reads once from `r`, at most `max` bytes and at most what the record being filled has
    /// room for; returns how many came (0 at the end of `r`). Safe to cancel.
    pub async fn read_buf_from<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> io::Result<usize> {
        let room = self.room().min(max);
        let n = r.read_buf(&mut (&mut self.buf).limit(room)).await?;
        self.plain += n;
        Ok(n)
    }

    /// As [`Records::read_buf_from`], with a read that does not wait (such as tokio's
    /// `try_read_buf`): `read` gets the room to fill.
    pub fn try_read_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut Limit<&mut Vec<u8>>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let room = self.room().min(max);
        let n = read(&mut (&mut self.buf).limit(room))?;
        self.plain += n;
        Ok(n)
    }

    /// Appends `bytes`.
    pub fn extend_from_slice(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(self.room());
            self.buf.extend_from_slice(&bytes[..take]);
            self.plain += take;
            bytes = &bytes[take..];
        }
    }

    /// Appends up to `n` bytes read from `r`, each read going straight into its record;
    /// returns how many came (fewer only at the end of `r`).
    pub fn read_from(&mut self, r: &mut impl Read, n: usize) -> io::Result<usize> {
        let mut got = 0;
        while got < n {
            let want = (n - got).min(self.room());
            // Fills the vector's spare room without zeroing it first.
            let came = r.by_ref().take(want as u64).read_to_end(&mut self.buf)?;
            (self.plain, got) = (self.plain + came, got + came);
            if came < want {
                break;
            }
        }
        Ok(got)
    }

    /// Each record's plaintext, in order.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let last = self.starts.len() - 1;
        self.starts.iter().enumerate().map(move |(i, &start)| {
            let end = match self.starts.get(i + 1) {
                Some(&next) => next - TAG,
                None => self.buf.len(),
            };
            debug_assert!(i < last || end == self.buf.len());
            &self.buf[start + LEN..end]
        })
    }

    /// The plaintext from byte `from` on, in the pieces the records hold.
    pub fn plain_from(&self, from: usize) -> impl Iterator<Item = &[u8]> {
        self.pieces()
            .scan(0, move |start, piece| {
                let (at, end) = (*start, *start + piece.len());
                *start = end;
                Some(&piece[from.clamp(at, end) - at..])
            })
            .filter(|piece| !piece.is_empty())
    }

    /// Seals every record in place, in order, and returns the bytes to send (none for no
    /// plaintext: an empty record would end the stream). Afterwards only [`Records::clear`]
    /// makes the set usable again.
    pub(super) fn seal(&mut self, sealer: &mut Sealer) -> io::Result<&[u8]> {
        if self.plain == 0 {
            return Ok(&[]);
        }
        if self.open() == 0 {
            // An ended record and nothing after it: no empty record either.
            self.starts.pop();
            self.buf.truncate(self.buf.len() - LEN);
        } else {
            self.buf.extend_from_slice(&[0; TAG]);
        }
        self.starts.push(self.buf.len());
        for pair in self.starts.windows(2) {
            let (len, sealed) = self.buf[pair[0]..pair[1]].split_at_mut(LEN);
            len.copy_from_slice(&(sealed.len() as u16).to_be_bytes());
            sealer
                .seal(sealed)
                .map_err(|e| io::Error::other(format!("encryption failed: {e}")))?;
        }
        Ok(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn plaintext_fills_records_and_reads_back_in_pieces() {
        let data = sample(3 * RECORD_PLAIN + 10);
        let mut r = Records::with_capacity(data.len() + 5);
        r.extend_from_slice(b"head!");
        r.end_record();
        r.end_record();
        assert_eq!(r.read_from(&mut &data[..], data.len()).unwrap(), data.len());
        assert_eq!(r.len(), data.len() + 5);
        assert_eq!(
            r.plain_from(0).collect::<Vec<_>>().concat(),
            [b"head!".as_slice(), &data].concat()
        );
        assert_eq!(r.plain_from(5).collect::<Vec<_>>().concat(), data);
        assert_eq!(
            r.plain_from(RECORD_PLAIN + 7).collect::<Vec<_>>().concat(),
            data[RECORD_PLAIN + 2..]
        );
        assert_eq!(r.plain_from(r.len()).count(), 0);
        // The header alone, then records of RECORD_PLAIN: 1 KiB-aligned pieces of data.
        let lens: Vec<usize> = r.plain_from(0).map(<[u8]>::len).collect();
        assert_eq!(lens, [5, RECORD_PLAIN, RECORD_PLAIN, RECORD_PLAIN, 10]);
        // A short reader: what it had, then nothing more.
        let mut short = Records::with_capacity(10);
        assert_eq!(short.read_from(&mut &data[..4], 10).unwrap(), 4);
        assert_eq!(short.plain_from(0).collect::<Vec<_>>().concat(), data[..4]);
    }

    #[tokio::test]
    async fn async_reads_fill_one_record_at_a_time_up_to_a_bound() {
        let data = sample(300);
        let mut r = Records::with_records_of(100, 300);
        let mut src = &data[..];
        assert_eq!(r.read_buf_from(&mut src, 1000).await.unwrap(), 100);
        assert_eq!(r.read_buf_from(&mut src, 30).await.unwrap(), 30);
        let more = r.try_read_with(1000, |spare| {
            let n = spare.remaining_mut().min(src.len());
            spare.put_slice(&src[..n]);
            Ok(n)
        });
        assert_eq!(more.unwrap(), 70, "the rest of the second record");
        let lens: Vec<usize> = r.plain_from(0).map(<[u8]>::len).collect();
        assert_eq!(lens, [100, 100]);
        assert_eq!(r.plain_from(0).collect::<Vec<_>>().concat(), data[..200]);
    }
}
