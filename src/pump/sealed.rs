//! Relaying between a plain socket and taojie's Noise channel: either end of a `forward
//! --to-key` / `--from-key` tunnel. Each direction crosses user space once, as a relay that
//! encrypts must: plaintext read from the socket lands in the records that carry it on
//! ([`SecureStream::seal_from`], one vectored read into several records' slots), is sealed
//! there and sent from there; records received are opened where they land in the relay's
//! buffer (the channel's direct read) and written to the socket from there. Both directions
//! run in the connection's one task, each socket's readiness coming from tokio's reactor.
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest, ReadHalf, WriteHalf};

use super::{Broken, Side, Totals};
use crate::secure::SecureStream;
use crate::transport::{NoiseStream, Plain};

/// A direction's buffer to start with: enough for interactive traffic, and all an idle
/// connection holds.
const SMALL: usize = 16 * 1024;
/// Plaintext per read once a read has filled the small room (bulk data): four whole records
/// each way, so the channel's reader receives and opens straight into the buffer (it does
/// from two records' room) and a transfer takes a system call per four records.
const LARGE: usize = 4 * crate::secure::stream::MAX_PLAIN;

/// Relays `plain` and the channel `noise` (which is on the `noise_side` of the relay) both
/// ways until both directions have ended, or the first error.
pub(super) async fn relay(
    plain: &Plain,
    noise: NoiseStream<Plain>,
    noise_side: Side,
    totals: &Totals,
) -> Result<(), Broken> {
    let (head, secure) = noise.into_parts();
    let (mut opener, mut sealer) = secure.into_split();
    let (plain_side, to_noise, from_noise) = match noise_side {
        Side::Target => (Side::Client, &totals.up, &totals.down),
        Side::Client => (Side::Target, &totals.down, &totals.up),
    };
    let seal = seal_way((plain, plain_side), (&mut sealer, noise_side), to_noise);
    let open = open_way(
        (&mut opener, head, noise_side),
        (plain, plain_side),
        from_noise,
    );
    tokio::try_join!(seal, open).map(drop)
}

/// Reads `src` into records, seals and sends them, until `src` ends; then the channel's
/// end-of-stream record and FIN.
async fn seal_way(
    (src, from): (&Plain, Side),
    (dst, to): (&mut SecureStream<WriteHalf<Plain>>, Side),
    count: &AtomicU64,
) -> Result<(), Broken> {
    let mut room = SMALL;
    loop {
        src.ready(Interest::READABLE)
            .await
            .map_err(|e| Broken::read(from, e))?;
        let read = dst.seal_from(room, |slots| {
            src.try_io(Interest::READABLE, || Ok(rustix::io::readv(src, slots)?))
        });
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Broken::read(from, e)),
        };
        if n == 0 {
            return dst.shutdown().await.map_err(|e| Broken::write(to, e));
        }
        // Sent before the next read: the socket's buffer is where records wait, not ours.
        dst.flush().await.map_err(|e| Broken::write(to, e))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        if n == room {
            room = LARGE;
        }
    }
}

/// Reads the channel's plaintext (first what came behind the hello) and writes it to `dst`
/// until the peer's end-of-stream record; then FIN.
async fn open_way(
    (src, head, from): (&mut SecureStream<ReadHalf<Plain>>, BytesMut, Side),
    (dst, to): (&Plain, Side),
    count: &AtomicU64,
) -> Result<(), Broken> {
    write_all(dst, &head)
        .await
        .map_err(|e| Broken::write(to, e))?;
    count.fetch_add(head.len() as u64, Ordering::Relaxed);
    let mut buf = vec![0u8; SMALL];
    loop {
        let n = src
            .read(&mut buf)
            .await
            .map_err(|e| Broken::read(from, e))?;
        if n == 0 {
            return dst.shutdown_write().map_err(|e| Broken::write(to, e));
        }
        write_all(dst, &buf[..n])
            .await
            .map_err(|e| Broken::write(to, e))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        if n == buf.len() && buf.len() < LARGE {
            buf = vec![0u8; LARGE];
        }
    }
}

/// Writes all of `bytes` to `dst`, waiting whenever its buffer is full.
async fn write_all(dst: &Plain, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        dst.ready(Interest::WRITABLE).await?;
        match dst.try_io(Interest::WRITABLE, || Ok(rustix::io::write(dst, bytes)?)) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
