//! The encrypted stream's tests: records of every size, damage of every kind, the direct
//! path with reads of every size, split halves and records built in place.
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// The two ends' ciphers: (initiator's, responder's).
fn noise_pair() -> ((Sealer, Opener), (Sealer, Opener)) {
    crate::secure::cipher::tests::cipher_pair()
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
async fn a_record_whose_copy_would_be_slow_arrives_whole() {
    let (w, nb) = wire(2, 20_000, true).await;
    let mut r = SecureStream::new(std::io::Cursor::new(Vec::new()), nb);
    r.rbuf.reserve(w.len() + PAGE);
    r.rbuf.extend_from_slice(&w);
    // The plaintext is opened where the record lies, 2 bytes into `rbuf`.
    let record = r.rbuf.as_ptr() as usize + 2;
    let mut out = vec![0xaa_u8; 2 * PAGE + 20_016];
    // A destination 5 bytes past the record's offset within a page.
    let at = (record + 5).wrapping_sub(out.as_ptr() as usize) % PAGE;
    assert!(slow_copy(out[at..].as_ptr() as usize, record));
    let n = r.read(&mut out[at..at + 20_016]).await.unwrap();
    assert_eq!(n, 20_016, "the first record and what fits of the second");
    assert!(out[at..at + 20_000].iter().all(|&b| b == 0));
    assert!(out[at + 20_000..at + n].iter().all(|&b| b == 1));
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, vec![1u8; 20_000 - 16]);
}

#[tokio::test]
async fn one_read_hands_out_every_buffered_record_that_fits() {
    let (w, nb) = wire(3, 1000, true).await;
    let mut r = SecureStream::new(std::io::Cursor::new(w), nb);
    let mut out = vec![0u8; 10_000];
    let n = r.read(&mut out).await.unwrap();
    assert_eq!(n, 3000);
    assert_eq!(r.read(&mut out).await.unwrap(), 0, "then the end");
}

#[tokio::test]
async fn bulk_data_is_read_in_larger_pieces() {
    let (w, nb) = wire(8, MAX_PLAIN, true).await;
    let mut r = SecureStream::new(std::io::Cursor::new(w), nb);
    let mut out = vec![0u8; 1 << 20];
    let mut got = 0;
    loop {
        match r.read(&mut out).await.unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, 8 * MAX_PLAIN);
    assert_eq!(r.read_size, READ_AHEAD);
}

#[tokio::test]
async fn records_built_in_place_arrive_between_ordinary_writes() {
    let (na, nb) = noise_pair();
    let mut w = SecureStream::new(Vec::new(), na);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
    w.write_all(b"before ").await.unwrap();
    let mut records = Records::with_capacity(big.len());
    records.extend_from_slice(&big[..7]);
    records.end_record();
    records.extend_from_slice(&big[7..]);
    w.write_records(&mut records).await.unwrap();
    // A set whose last record was ended sends no empty record (that would end the stream);
    // a set given back is empty and takes new bytes.
    let mut ended = records;
    assert!(ended.is_empty());
    ended.extend_from_slice(b"mid");
    ended.end_record();
    w.write_records(&mut ended).await.unwrap();
    w.write_all(b" after").await.unwrap();
    w.shutdown().await.unwrap();
    let got = read_all(w.inner, nb).await.unwrap();
    assert_eq!(got, [b"before ".as_slice(), &big, b"mid after"].concat());
}

#[tokio::test]
async fn split_halves_read_and_write_each_their_way() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (na, nb) = noise_pair();
    let (a, b) = (SecureStream::new(a, na), SecureStream::new(b, nb));
    let (mut a_read, mut a_write) = a.into_split();
    let (mut b_read, mut b_write) = b.into_split();
    let mut records = Records::with_records_of(MAX_PLAIN, 10);
    records.extend_from_slice(b"?? from b");
    records.head_mut(2).copy_from_slice(b"hi");
    let talk = async {
        a_write.write_all(b"from a").await.unwrap();
        a_write.shutdown().await.unwrap();
        b_write.write_records(&mut records).await.unwrap();
        b_write.shutdown().await.unwrap();
    };
    let (mut at_b, mut at_a) = (Vec::new(), Vec::new());
    let listen = async {
        b_read.read_to_end(&mut at_b).await.unwrap();
        a_read.read_to_end(&mut at_a).await.unwrap();
    };
    tokio::join!(talk, listen);
    assert_eq!(at_b, b"from a");
    assert_eq!(at_a, b"hi from b");
}

/// Hands out `wire` at most `step` bytes per read, as a socket might.
struct Trickle {
    wire: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .step
            .min(buf.remaining())
            .min(self.wire.len() - self.at);
        buf.put_slice(&self.wire[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Reads everything with a 1 MiB buffer; what came, and how it ended.
async fn read_big(
    wire: Vec<u8>,
    step: usize,
    noise: (Sealer, Opener),
) -> (Vec<u8>, io::Result<()>) {
    let trickle = Trickle { wire, at: 0, step };
    let mut r = SecureStream::new(trickle, noise);
    let (mut got, mut buf) = (Vec::new(), vec![0u8; 1 << 20]);
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[tokio::test]
async fn bulk_records_opened_in_the_readers_buffer_arrive_whole_whatever_the_reads() {
    let want: Vec<u8> = (0..12).flat_map(|i| vec![i as u8; MAX_PLAIN]).collect();
    for step in [1000, 65_537, 100_003, 300_000, 1 << 20] {
        let (w, nb) = wire(12, MAX_PLAIN, true).await;
        let (got, end) = read_big(w, step, nb).await;
        end.unwrap();
        assert!(got == want, "reads of {step}: {} bytes", got.len());
    }
}

#[tokio::test]
async fn a_damaged_bulk_record_ends_the_stream_after_the_good_ones() {
    for step in [70_000, 1 << 20] {
        let (mut w, nb) = wire(12, MAX_PLAIN, true).await;
        // A bit of the sixth record's ciphertext.
        w[5 * (2 + MAX_RECORD) + 100] ^= 4;
        let (got, end) = read_big(w, step, nb).await;
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(got.len(), 5 * MAX_PLAIN, "reads of {step}");
        assert!(
            got.chunks(MAX_PLAIN)
                .enumerate()
                .all(|(i, c)| c.iter().all(|&b| b == i as u8))
        );
        // Cut inside the ninth record.
        let (w, nb) = wire(12, MAX_PLAIN, true).await;
        let (got, end) = read_big(w[..8 * (2 + MAX_RECORD) + 7].to_vec(), step, nb).await;
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(got.len(), 8 * MAX_PLAIN);
    }
}

/// The wire bytes of `records` records of `size` bytes each, sealed by one side.
async fn wire(records: usize, size: usize, end: bool) -> (Vec<u8>, (Sealer, Opener)) {
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

async fn read_all(bytes: Vec<u8>, noise: (Sealer, Opener)) -> io::Result<Vec<u8>> {
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
