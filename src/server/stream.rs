//! The accept loop for stream listeners (TCP and Unix), one per core in thread-per-core mode.
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error_span, warn};

use super::conn::{Activity, Conn};
use super::{Listener, LiveLimits, bind, per_core};
use crate::retry::Backoff;

/// The next connection's id: unique in the process, across every listener, so a log reader
/// can follow one connection through lines of several services.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Serves `listener` until `shutdown` resolves: each accepted connection runs `handler` in a
/// task of its own, within `limits` (read again for each new connection, so live limits that
/// change apply to the next one). Returns once every connection has finished or was cut at
/// the grace deadline.
///
/// In thread-per-core mode ([`per_core`](super::per_core)) a TCP listener is served by one
/// accept loop per core, each on its own thread and `SO_REUSEPORT` listener, all under the
/// one connection cap; `shutdown` stops them all, and this returns when all are done.
pub async fn serve_stream<H, F>(
    service: &'static str,
    listener: Listener,
    limits: impl Into<LiveLimits>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Conn) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let shared = Shared {
        service,
        handler: Arc::new(handler),
        live: limits.into(),
        // A count rather than a semaphore's permits: the cap may move while connections are
        // open, and lowering it below the count only refuses newcomers until enough have left.
        open: Arc::new(AtomicUsize::new(0)),
    };
    // An error (the listener was bound without SO_REUSEPORT, before the mode was set) leaves
    // it to the one loop, as in the ordinary mode.
    let runtimes = per_core::extra_runtimes();
    let siblings = bind::reuse_port_siblings(&listener, 1 + runtimes.len()).unwrap_or_else(|e| {
        warn!(service, error = %format!("{e:#}"), "cannot spread the listener over threads; serving it on one");
        Vec::new()
    });
    if siblings.is_empty() {
        return accept_loop(shared, listener, shutdown).await;
    }
    let stop = CancellationToken::new();
    let done: Vec<_> = siblings
        .into_iter()
        .zip(runtimes)
        .map(|(sibling, runtime)| {
            let shared = shared.clone();
            let stop = stop.clone().cancelled_owned();
            per_core::spawn(service, runtime, sibling, move |l| {
                accept_loop(shared, l, stop)
            })
        })
        .collect();
    let relay = async {
        shutdown.await;
        stop.cancel();
    };
    tokio::join!(relay, accept_loop(shared, listener, stop.cancelled()));
    for finished in done {
        let _ = finished.await;
    }
}

/// What every accept loop of one listener shares, across threads in thread-per-core mode.
struct Shared<H> {
    service: &'static str,
    handler: Arc<H>,
    live: LiveLimits,
    /// Connections open on every loop together: the one count the cap applies to.
    open: Arc<AtomicUsize>,
}

impl<H> Clone for Shared<H> {
    fn clone(&self) -> Self {
        Shared {
            service: self.service,
            handler: self.handler.clone(),
            live: self.live.clone(),
            open: self.open.clone(),
        }
    }
}

/// One accept loop: accepts on `listener` until `shutdown`, spawning each connection on the
/// runtime it runs on, then waits for those connections up to the grace deadline.
async fn accept_loop<H, F>(
    shared: Shared<H>,
    listener: Listener,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Conn) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + Send + 'static,
{
    let Shared {
        service,
        handler,
        live,
        open,
    } = shared;
    let meter = crate::metrics::service(service);
    let tracker = TaskTracker::new();
    let cut = CancellationToken::new();
    // Pauses after an accept error such as EMFILE.
    let mut backoff = Backoff::accept();
    tokio::pin!(shutdown);

    loop {
        let tracking = live.now().idle_timeout.is_some();
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            res = accept(&listener, tracking) => res,
        };
        // Limits changed while waiting (a reload) apply to this connection already: the cap,
        // and the idle timeout if the connection tracks activity (whether it does was decided
        // at accept, under the timeout in force then).
        let now = live.now();
        let max_conns = now.max_conns;
        let idle = now.idle_timeout.filter(|_| tracking);
        let conn = match accepted {
            Ok(conn) => {
                backoff.reset();
                conn
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                let pause = backoff.next_wait();
                warn!(service, error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = sleep(pause) => {}
                }
                continue;
            }
        };
        meter.accepted.inc();
        // Other threads' loops may add to the count at the same moment (thread-per-core): a
        // place is taken by compare-and-swap, so together they cannot pass the cap.
        let Some(permit) = Slot::take(&open, max_conns, meter) else {
            debug!(service, peer = %conn.peer(), "connection limit reached; closing");
            meter.refused("connection limit");
            continue;
        };
        let conn = conn.metered(meter);
        // Every line the connection logs carries who it is, in both formats (`conn{service=…
        // peer=ADDR conn=N}: …` in text, a `span` object in JSON). A span's level only decides
        // when it is enabled; no filter short of `off` drops the error level, so it is there
        // for warnings at RUST_LOG=warn too.
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let span = error_span!("conn", service, peer = %conn.peer(), conn = id);
        let handler = handler.clone();
        let cut = cut.clone();
        let activity = conn.activity().clone();
        tracker.spawn(
            async move {
                // Idle time counts from when serving starts, not from accept: a busy runtime
                // must not time out a connection it has not looked at yet.
                activity.touch();
                tokio::select! {
                    // The handler first: the timers only matter when it is not ready.
                    biased;
                    res = handler(conn) => match res {
                        Ok(()) => debug!("closed"),
                        Err(e) => debug!(error = %e, "closed with error"),
                    },
                    _ = idle_expired(activity, idle) => debug!("idle timeout; closing"),
                    _ = cut.cancelled() => debug!("cut at the shutdown deadline"),
                }
                drop(permit);
            }
            .instrument(span),
        );
    }

    // Stop accepting before waiting: the socket (and a Unix socket's file) goes now.
    drop(listener);
    tracker.close();
    if tokio::time::timeout(live.now().grace, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            service,
            open = tracker.len(),
            "grace period over; closing open connections"
        );
        cut.cancel();
        tracker.wait().await;
    }
}

/// One open connection counted against the cap and in the service's `connections_open`
/// gauge; dropping it (when its task ends, however it ends) frees the place.
struct Slot(Arc<AtomicUsize>, &'static crate::metrics::Service);

impl Slot {
    /// A place under `max` in `open`, or None when all are taken.
    fn take(
        open: &Arc<AtomicUsize>,
        max: usize,
        meter: &'static crate::metrics::Service,
    ) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        meter.open.inc();
        Some(Slot(open.clone(), meter))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.open.dec();
    }
}

async fn accept(listener: &Listener, track_activity: bool) -> io::Result<Conn> {
    let activity = Activity::new(track_activity);
    match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            crate::sys::keepalive(&stream, crate::sys::SERVER_KEEPALIVE);
            Ok(Conn::tcp(stream, peer, activity))
        }
        Listener::Unix(l, _) => {
            let (stream, _) = l.accept().await?;
            Ok(Conn::unix(stream, activity))
        }
    }
}

/// Resolves once the connection has moved no byte for `idle`; never if there is no timeout.
async fn idle_expired(activity: Activity, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let deadline = activity.last() + idle;
        if Instant::now() >= deadline {
            return;
        }
        sleep_until(deadline).await;
    }
}

/// Errors that concern one connection that went away before it was accepted; the listener
/// itself is fine and the next accept goes on at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
