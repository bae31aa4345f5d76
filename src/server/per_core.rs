//! Thread-per-core serving (`taojie serve --per-core`): the process runs one current-thread
//! runtime per core, and every TCP listener served with [`serve_stream`](super::serve_stream)
//! gets one `SO_REUSEPORT` sibling per extra core, accepting on that core's thread (N threads
//! in all, shared by every listener: the first is the one `main` runs). The
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
//! `SO_REUSEPORT`), the signal handler, and every task a service starts beside its listeners
//! rather than per connection (the chat broker's NATS link, the UDP hubs). Chat's TCP members
//! are spread like any connection: its rooms are one `Arc`'d state with its own locks, so a
//! post crosses to members on other threads as it does between the default runtime's workers.
//!
//! The mode is process-wide ([`set_cores`]), chosen by `taojie serve` before any service
//! binds; the services never know it. Only in this mode are TCP listeners bound with
//! `SO_REUSEPORT`: otherwise a second server of the same user on the same port would be an
//! error, as it should be, rather than a silent sharer of the traffic.
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
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

/// The runtimes of the threads beyond the first, one per extra core, started on first use
/// (none in the ordinary mode). Every listener's siblings share them: N threads in all, however
/// many listeners the services bind. A thread that cannot start is logged and left out.
pub(super) fn extra_runtimes() -> &'static [Handle] {
    static EXTRA: OnceLock<Vec<Handle>> = OnceLock::new();
    if cores() <= 1 {
        return &[];
    }
    EXTRA.get_or_init(|| {
        (1..cores())
            .filter_map(|i| {
                start_core(i)
                    .inspect_err(|e| warn!(error = %e, "cannot start thread taojie-core-{i}"))
                    .ok()
            })
            .collect()
    })
}

/// Starts thread `taojie-core-I` running a current-thread runtime for the life of the
/// process, and returns its handle. Waits for the thread to build it: a moment, once.
fn start_core(i: usize) -> io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("taojie-core-{i}"))
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    // Drives the tasks spawned on it (accept loops and their connections)
                    // until the process ends.
                    rt.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("the thread ended before its runtime started"))?
}

/// Runs what `run` makes of `listener` on `runtime` (the listener registered with it); the
/// receiver resolves when that is done.
pub(super) fn spawn<R, F>(
    service: &'static str,
    runtime: &Handle,
    listener: std::net::TcpListener,
    run: R,
) -> oneshot::Receiver<()>
where
    R: FnOnce(Listener) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (done, finished) = oneshot::channel();
    runtime.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => run(Listener::Tcp(l)).await,
            Err(e) => warn!(service, error = %e, "cannot serve a listener on another thread"),
        }
        let _ = done.send(());
    });
    finished
}
