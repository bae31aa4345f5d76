//! Thread-per-core serving (`taojie serve --per-core`): the process runs one current-thread
//! runtime per core, and every TCP listener served with [`serve_stream`](super::serve_stream)
//! gets one `SO_REUSEPORT` sibling per extra core, each accepting on a thread of its own. The
//! kernel spreads new connections over the siblings by their address hash; a connection then
//! lives its whole life on the thread that accepted it, with no work stealing and no wake-up
//! of another thread per request.
//!
//! What stays process-wide is shared, not copied: the connection cap is one count that every
//! sibling takes from, limits a reload changes reach every sibling (a `watch` channel), the
//! metrics are process-wide counters, and a handler's own state (a chat broker's rooms, the
//! proxy's users, exec's process table) is behind the `Arc`s the handler already holds, since
//! a handler must be `Send + Sync`. The first thread (the one that called `serve_stream`)
//! keeps what cannot be spread: UDP sockets (their per-source limits and the chat hub are one
//! state, and a datagram has no connection to keep on a thread), Unix sockets (no
//! `SO_REUSEPORT`), the signal handler, the metrics endpoint's scrape and every broker task a
//! service starts beside its listeners.
//!
//! The mode is process-wide ([`set_cores`]), chosen by `taojie serve` before any service
//! binds; the services never know it. Only in this mode are TCP listeners bound with
//! `SO_REUSEPORT`: otherwise a second server of the same user on the same port would be an
//! error, as it should be, rather than a silent sharer of the traffic.
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;
use tracing::warn;

use super::Listener;

/// Runtimes (one per thread) that share each TCP listener; 1 is the ordinary mode.
static CORES: AtomicUsize = AtomicUsize::new(1);

/// Makes every TCP listener bound from now on spread over `n` threads (one current-thread
/// runtime each, the calling runtime being the first); 1 (or 0) turns it off. Call it before
/// any service binds, from a current-thread runtime.
pub fn set_cores(n: usize) {
    CORES.store(n.max(1), Ordering::Relaxed);
}

/// Threads each TCP listener is spread over (1: the ordinary mode).
pub fn cores() -> usize {
    CORES.load(Ordering::Relaxed)
}

/// Whether TCP listeners are bound with `SO_REUSEPORT` (only in thread-per-core mode).
pub(super) fn reuse_port() -> bool {
    cores() > 1
}

/// Starts a thread named `taojie-core-I` with a current-thread runtime that runs what `run`
/// makes of `listener` (registered with that runtime), then drops the runtime without
/// waiting for blocking work. The receiver resolves when the serving is done (or the thread
/// could not start: it is logged).
pub(super) fn spawn<R, F>(
    service: &'static str,
    index: usize,
    listener: std::net::TcpListener,
    run: R,
) -> oneshot::Receiver<()>
where
    R: FnOnce(Listener) -> F + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let (done, finished) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("taojie-core-{index}"))
        .spawn(move || {
            if let Err(e) = serve_here(listener, run) {
                warn!(service, error = %e, "cannot serve a listener on thread {index}");
            }
            let _ = done.send(());
        });
    if let Err(e) = thread {
        warn!(service, error = %e, "cannot start thread {index}");
    }
    finished
}

/// Runs what `run` makes of `listener` on a current-thread runtime of this thread's own.
fn serve_here<R, F>(listener: std::net::TcpListener, run: R) -> std::io::Result<()>
where
    R: FnOnce(Listener) -> F,
    F: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        run(Listener::Tcp(listener)).await;
        Ok(())
    });
    // A handler's spawn_blocking work (a file being read) must not hold this thread past the
    // grace deadline the accept loop already kept: the service is done with it.
    rt.shutdown_background();
    served
}
