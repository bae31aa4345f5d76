//! Moving bytes between a file and transit records at full speed: the disk and SHA-256 run on
//! a thread of their own while the runtime seals or opens records, with a few buffers passed
//! back and forth (bounded memory, no copy of the data between the two).
use std::io::{Read, Write};

use anyhow::{Result, anyhow, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::super::transit::records::{OVERHEAD, RecordReader, RecordWriter};
use super::progress::Progress;

/// Bytes of file data per record we send to a taojie peer.
pub const CHUNK: usize = 256 << 10;
/// Bytes per record to a wormhole peer: the Python client's own record size (its receiver
/// joins a record's pieces by copying, so long records slow it down).
pub const CHUNK_V1: usize = 16 << 10;
/// Buffers in flight between the disk thread and the network.
const DEPTH: usize = 4;

/// Sends `len` bytes of `source` as records of `chunk` bytes, adding them to `hasher` on the
/// way; returns the SHA-256. The source having fewer bytes than `len` is an error (it changed
/// while sent).
pub async fn send_file<R, W>(
    mut source: R,
    len: u64,
    chunk: usize,
    out: &mut RecordWriter<W>,
    progress: &Progress,
    hasher: Sha256,
) -> Result<[u8; 32]>
where
    R: Read + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let depth = (DEPTH * CHUNK / chunk).max(DEPTH);
    let (full_tx, mut full_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(depth);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(depth + 1);
    for _ in 0..depth {
        empty_tx.try_send(RecordWriter::<W>::buffer(chunk)).ok();
    }
    let reader = std::thread::spawn(move || -> [u8; 32] {
        let mut hasher = hasher;
        let mut left = len;
        while left > 0 {
            let Some(mut buf) = empty_rx.blocking_recv() else {
                break;
            };
            let want = left.min(chunk as u64) as usize;
            buf.resize(OVERHEAD + want, 0);
            let res = source.read_exact(&mut buf[OVERHEAD..]).map(|_| {
                hasher.update(&buf[OVERHEAD..]);
                buf
            });
            let failed = res.is_err();
            if full_tx.blocking_send(res).is_err() || failed {
                break;
            }
            left -= want as u64;
        }
        hasher.finalize().into()
    });
    let mut sent = 0u64;
    while sent < len {
        let mut buf = full_rx
            .recv()
            .await
            .ok_or_else(|| anyhow!("the file reader stopped"))?
            .map_err(|e| anyhow!("cannot read the file being sent: {e}"))?;
        out.send_buf(&mut buf).await?;
        sent += (buf.len() - OVERHEAD) as u64;
        progress.inc((buf.len() - OVERHEAD) as u64);
        let _ = empty_tx.try_send(buf);
    }
    drop(empty_tx);
    reader.join().map_err(|_| anyhow!("the file reader failed"))
}

/// Receives records holding exactly `len` bytes into `sink` (on the disk thread), adding them
/// to `hasher`; returns the sink and the SHA-256. More bytes than `len`, or fewer before the
/// end, is an error.
pub async fn recv_file<S, R>(
    sink: S,
    len: u64,
    input: &mut RecordReader<R>,
    progress: &Progress,
    hasher: Sha256,
) -> Result<(S, [u8; 32])>
where
    S: Write + Send + 'static,
    R: AsyncRead + Unpin,
{
    let (full_tx, mut full_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(DEPTH + 1);
    let writer = std::thread::spawn(move || -> std::io::Result<(S, [u8; 32])> {
        let (mut sink, mut hasher) = (sink, hasher);
        while let Some(buf) = full_rx.blocking_recv() {
            hasher.update(&buf);
            sink.write_all(&buf)?;
            let _ = empty_tx.try_send(buf);
        }
        sink.flush()?;
        Ok((sink, hasher.finalize().into()))
    });
    let mut got = 0u64;
    let mut spare = Vec::new();
    let result = async {
        while got < len {
            let mut buf = empty_rx
                .try_recv()
                .unwrap_or_else(|_| std::mem::take(&mut spare));
            if !input.recv_into(&mut buf).await? {
                bail!("the connection dropped after {got} of {len} bytes");
            }
            got += buf.len() as u64;
            if got > len {
                bail!("refused: the sender sent more than the {len} bytes it offered");
            }
            progress.inc(buf.len() as u64);
            if full_tx.send(buf).await.is_err() {
                break; // the writer failed: its error is below
            }
        }
        Ok(())
    }
    .await;
    drop(full_tx);
    let written = writer
        .join()
        .map_err(|_| anyhow!("the file writer failed"))?
        .map_err(|e| anyhow!("cannot write the file: {e}"));
    result?;
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wormhole::keys::Key;
    use crate::wormhole::transit::Suite;

    #[tokio::test]
    async fn a_file_goes_through_with_its_hash() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let key = Key([5; 32]);
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut w = RecordWriter::new(a, &key, Suite::ChaCha);
        let mut r = RecordReader::new(b, &key, Suite::ChaCha);
        let len = data.len() as u64;
        let src = std::io::Cursor::new(data.clone());
        let p = Progress::hidden();
        let send = tokio::spawn(async move {
            let p = Progress::hidden();
            send_file(src, len, CHUNK_V1, &mut w, &p, Sha256::new())
                .await
                .unwrap()
        });
        let (sink, hash) = recv_file(Vec::new(), len, &mut r, &p, Sha256::new())
            .await
            .unwrap();
        assert_eq!(sink, data);
        assert_eq!(hash, send.await.unwrap());
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&data)));
    }

    #[tokio::test]
    async fn more_than_offered_or_less_is_refused() {
        let key = Key([5; 32]);
        let mut wire = Vec::new();
        let mut w = RecordWriter::new(&mut wire, &key, Suite::SecretBox);
        w.send(&[1u8; 10]).await.unwrap();
        let p = Progress::hidden();
        let mut r = RecordReader::new(&wire[..], &key, Suite::SecretBox);
        let e = recv_file(Vec::new(), 5, &mut r, &p, Sha256::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        let mut r = RecordReader::new(&wire[..], &key, Suite::SecretBox);
        let e = recv_file(Vec::new(), 20, &mut r, &p, Sha256::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("dropped after 10 of 20"), "{e}");
    }
}
