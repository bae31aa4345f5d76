//! Relaying between a plain socket and taojie's Noise channel: either end of a `forward
//! --to-key` / `--from-key` tunnel. Each direction crosses user space once, as a relay that
//! encrypts must: plaintext read from the socket lands in the records that carry it on
//! ([`SecureStream::seal_from`], one vectored read into several records' slots), is sealed
//! there and sent from there; records received are opened where they land in the relay's
//! buffer (a record cut at the end of a read waits there for the rest) and their plaintext
//! written to the socket from there. The relay does every read and write on both sockets
//! itself ([`SecureStream::detach`]); both directions run in the connection's one task, each
//! socket's readiness coming from tokio's reactor.
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::Interest;

use super::{Broken, Side, Totals};
use crate::secure::SecureStream;
use crate::secure::stream::{MAX_PLAIN, MAX_RECORD};
use crate::transport::{NoiseStream, Plain};

/// A direction's plaintext per read to start with: enough for interactive traffic.
const SMALL: usize = 16 * 1024;
/// Plaintext per read once a read has filled the small room (bulk data): four whole records,
/// a system call per four records.
const LARGE: usize = 4 * MAX_PLAIN;
/// A whole record on the wire, its length first.
const FULL: usize = 2 + MAX_RECORD;
/// The receiving buffer to start with: room for a whole record after one cut short (its
/// pages are touched only as reads fill them).
const RECEIVE: usize = 2 * FULL;
/// The receiving buffer once a read has filled it (bulk data): a record cut at the end of a
/// read is moved to the front only when less than a record's room is left after it.
const RECEIVE_LARGE: usize = 8 * FULL;

/// Relays `plain` and the channel `noise` (which is on the `noise_side` of the relay) both
/// ways until both directions have ended, or the first error.
pub(super) async fn relay(
    plain: &Plain,
    noise: NoiseStream<Plain>,
    noise_side: Side,
    totals: &Totals,
) -> Result<(), Broken> {
    let (head, secure) = noise.into_parts();
    let (socket, mut opener, mut sealer) = secure.detach();
    let (plain_side, to_noise, from_noise) = match noise_side {
        Side::Target => (Side::Client, &totals.up, &totals.down),
        Side::Client => (Side::Target, &totals.down, &totals.up),
    };
    let seal = seal_way(
        (plain, plain_side),
        (&socket, &mut sealer, noise_side),
        to_noise,
    );
    let open = open_way(
        (&socket, &mut opener, &head, noise_side),
        (plain, plain_side),
        from_noise,
    );
    tokio::try_join!(seal, open).map(drop)
}

/// Reads `src` into records, seals and sends them, until `src` ends; then the channel's
/// end-of-stream record and FIN.
async fn seal_way(
    (src, from): (&Plain, Side),
    (dst, records, to): (&Plain, &mut SecureStream<()>, Side),
    count: &AtomicU64,
) -> Result<(), Broken> {
    let mut room = SMALL;
    loop {
        src.ready(Interest::READABLE)
            .await
            .map_err(|e| Broken::read(from, e))?;
        let read = records.seal_from(room, |slots| {
            src.try_io(Interest::READABLE, || Ok(rustix::io::readv(src, slots)?))
        });
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Broken::read(from, e)),
        };
        if n == 0 {
            records.seal_end().map_err(|e| Broken::write(to, e))?;
            send_sealed(dst, records)
                .await
                .map_err(|e| Broken::write(to, e))?;
            return dst.shutdown_write().map_err(|e| Broken::write(to, e));
        }
        // Sent before the next read: the socket's buffer is where records wait, not ours.
        send_sealed(dst, records)
            .await
            .map_err(|e| Broken::write(to, e))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        if n == room {
            room = LARGE;
        }
    }
}

/// Writes out every sealed record.
async fn send_sealed(dst: &Plain, records: &mut SecureStream<()>) -> io::Result<()> {
    while !records.sealed().is_empty() {
        let n = write_some(dst, records.sealed()).await?;
        records.sent(n);
    }
    Ok(())
}

/// Receives records from `src` and opens them where they land, writing their plaintext to
/// `dst` (first what came behind the hello and what the channel had read ahead), until the
/// peer's end-of-stream record; then FIN.
async fn open_way(
    (src, records, head, from): (&Plain, &mut SecureStream<()>, &[u8], Side),
    (dst, to): (&Plain, Side),
    count: &AtomicU64,
) -> Result<(), Broken> {
    let ahead = records
        .take_read_ahead()
        .map_err(|e| Broken::read(from, e))?;
    for plain in [head, &ahead.plain] {
        write_all(dst, plain)
            .await
            .map_err(|e| Broken::write(to, e))?;
        count.fetch_add(plain.len() as u64, Ordering::Relaxed);
    }
    if ahead.ended {
        return dst.shutdown_write().map_err(|e| Broken::write(to, e));
    }
    let mut buf = vec![0u8; RECEIVE.max(ahead.cipher.len() + FULL)];
    buf[..ahead.cipher.len()].copy_from_slice(&ahead.cipher);
    // Received ciphertext not yet opened: `buf[start..end]`.
    let (mut start, mut end) = (0, ahead.cipher.len());
    loop {
        let opened = records.open_records(&mut buf[start..end]);
        if opened.plain > 0 {
            write_all(dst, &buf[start..start + opened.plain])
                .await
                .map_err(|e| Broken::write(to, e))?;
            count.fetch_add(opened.plain as u64, Ordering::Relaxed);
        }
        if let Some(e) = opened.error {
            return Err(Broken::read(from, e));
        }
        if opened.ended {
            return dst.shutdown_write().map_err(|e| Broken::write(to, e));
        }
        start += opened.used;
        if start == end {
            (start, end) = (0, 0);
        } else if buf.len() - end < FULL {
            // A record cut at the end of a read, with less than a record's room after it.
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let room = buf.len() - end;
        let n = read_some(src, &mut buf[end..])
            .await
            .map_err(|e| Broken::read(from, e))?;
        if n == 0 {
            return Err(Broken::read(from, crate::secure::stream::truncated()));
        }
        end += n;
        if n == room && buf.len() < RECEIVE_LARGE {
            buf.resize(RECEIVE_LARGE, 0);
        }
    }
}

/// Reads what `src` has (at least one byte, or 0 at its end), waiting until it has some.
async fn read_some(src: &Plain, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        src.ready(Interest::READABLE).await?;
        match src.try_io(Interest::READABLE, || Ok(rustix::io::read(src, &mut *buf)?)) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes some of `bytes` (at least one) to `dst`, waiting whenever its buffer is full.
async fn write_some(dst: &Plain, bytes: &[u8]) -> io::Result<usize> {
    loop {
        dst.ready(Interest::WRITABLE).await?;
        match dst.try_io(Interest::WRITABLE, || Ok(rustix::io::write(dst, bytes)?)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes` to `dst`.
async fn write_all(dst: &Plain, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = write_some(dst, bytes).await?;
        bytes = &bytes[n..];
    }
    Ok(())
}
