//! Relaying through a buffer, for streams the kernel cannot splice: TLS and Noise ends,
//! whose bytes are decrypted and encrypted in user space anyway.
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Broken, Side, Totals};
use crate::transport::Stream;

/// A direction's buffer to start with: enough for interactive traffic, and all an idle
/// connection holds.
const SMALL: usize = 16 * 1024;
/// The buffer once a read has filled the small one (bulk data): room for several whole
/// Noise records, so the Noise stream receives and decrypts straight into it (at least two
/// records' worth), and for many TLS records.
const LARGE: usize = 256 * 1024;

/// Relays both ways until both have ended, or the first error.
pub(super) async fn relay(client: Stream, target: Stream, totals: &Totals) -> Result<(), Broken> {
    let (client_tls, target_tls) = (client.kind() == "tls", target.kind() == "tls");
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut target_r, mut target_w) = tokio::io::split(target);
    let up = one_way(
        (&mut client_r, Side::Client, client_tls),
        (&mut target_w, Side::Target),
        &totals.up,
        totals,
    );
    let down = one_way(
        (&mut target_r, Side::Target, target_tls),
        (&mut client_w, Side::Client),
        &totals.down,
        totals,
    );
    tokio::try_join!(up, down).map(drop)
}

/// Copies from `src` to `dst` until `src` ends, then shuts `dst`'s writing side down (FIN,
/// after close_notify or an end-of-stream record where there is a layer). A TLS source
/// (`tls`) that ends without close_notify — ncat's way — ends too, noted in `totals`; a Noise
/// stream cut without its end record stays an error.
async fn one_way<R, W>(
    (src, from, tls): (&mut R, Side, bool),
    (dst, to): (&mut W, Side),
    count: &AtomicU64,
    totals: &Totals,
) -> Result<(), Broken>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; SMALL];
    loop {
        // What is ready now is written on at once; only when the source has nothing more
        // ready is the destination flushed (a layer's sealed records, sent in few system
        // calls), not after every read.
        let read = match src.read(&mut buf).now_or_never() {
            Some(read) => read,
            None => {
                dst.flush().await.map_err(|e| Broken::write(to, e))?;
                src.read(&mut buf).await
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) if tls && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                totals.unclean.store(true, Ordering::Relaxed);
                0
            }
            Err(e) => return Err(Broken::read(from, e)),
        };
        if n == 0 {
            return dst.shutdown().await.map_err(|e| Broken::write(to, e));
        }
        dst.write_all(&buf[..n])
            .await
            .map_err(|e| Broken::write(to, e))?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        if n == buf.len() && buf.len() < LARGE {
            buf = vec![0u8; LARGE];
        }
    }
}
