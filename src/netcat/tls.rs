//! TLS for netcat: `connect --tls` (verified unless told `--insecure`) and `listen
//! --tls-cert`/`--tls-self-signed`. The TLS stream then goes through the same pumps as a
//! plain one, so half-close works the same: our end of input sends close_notify, then FIN,
//! and the peer's close_notify is its end of the stream.
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::timeout;

use super::note;
use crate::tls::{Client, ClientOptions, ServerOptions, describe, server::ServerTls};

/// How long a peer has for its side of the handshake.
pub(super) const HANDSHAKE: Duration = Duration::from_secs(10);

/// The client handshake with the server at `host`, within `wait`; with `-v`, the session
/// and the certificate on stderr.
pub(super) async fn connect<S>(
    options: &ClientOptions,
    stream: S,
    host: &str,
    wait: Duration,
    verbose: bool,
) -> Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let client = Client::new(options)?;
    let tls = match timeout(wait.max(HANDSHAKE), client.connect(stream, host)).await {
        Ok(done) => done?,
        Err(_) => bail!("TLS with {host}: no handshake in {:?}", wait.max(HANDSHAKE)),
    };
    if verbose {
        for line in describe::describe(tls.get_ref().1) {
            note(true, format_args!("{line}"));
        }
    }
    Ok(tls)
}

/// The listener's TLS configuration, with the pin of a made certificate said on stderr.
pub(super) fn server(opts: &ServerOptions, listen_addr: &str) -> Result<Option<ServerTls>> {
    if !opts.any() {
        return Ok(None);
    }
    let names = vec![crate::tls::host_of(listen_addr).to_string()];
    let tls = crate::tls::server_config(opts, &names)?;
    if opts.self_signed {
        eprintln!(
            "taojie: TLS certificate made for this run: key pin {} (connect --tls --pin {}), \
             SHA-256 fingerprint {}",
            tls.pin, tls.pin, tls.fingerprint
        );
    }
    Ok(Some(tls))
}

/// The server handshake with an accepted peer, within [`HANDSHAKE`]; with `-v`, the session
/// on stderr.
pub(super) async fn accept<S>(
    tls: &ServerTls,
    stream: S,
    verbose: bool,
) -> Result<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = match timeout(HANDSHAKE, tls.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => bail!("TLS: {why}"),
        Err(_) => bail!("TLS: no handshake in {HANDSHAKE:?}"),
    };
    if verbose {
        for line in describe::describe(tls.get_ref().1) {
            note(true, format_args!("{line}"));
        }
    }
    Ok(tls)
}

/// A TLS reader that takes the peer's TCP end without close_notify as the end of the stream,
/// and remembers it: ncat, for one, ends its connections that way. The bytes that came are
/// all authenticated; only their completeness is unproven, which [`Lenient::warn`] says.
pub(super) struct Lenient<R> {
    inner: R,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R> Lenient<R> {
    /// Wraps `inner`; `cut` is set when the stream ends without close_notify.
    pub(super) fn new(inner: R, cut: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        Lenient { inner, cut }
    }

    /// Says on stderr that the stream ended without close_notify, if it did.
    pub(super) fn warn(cut: &std::sync::atomic::AtomicBool) {
        if cut.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "taojie: warning: the peer closed without a TLS close_notify: what came is \
                 authentic but may be cut short"
            );
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Lenient<R> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let me = self.get_mut();
        match std::pin::Pin::new(&mut me.inner).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                me.cut.store(true, std::sync::atomic::Ordering::Relaxed);
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
