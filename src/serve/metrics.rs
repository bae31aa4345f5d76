//! The metrics endpoint: `GET /metrics` over HTTP/1.1 on its own listener, served by the
//! same framework as the services (so it has a connection cap and idle timeout of its own),
//! with a bounded request head and a deadline for it. Everything else is a 404.
//!
//! Its [`MAX_CONNS`] slots go to scrapes first: when they are all taken, a newcomer takes the
//! slot of the connection that has waited longest without asking anything (no request served
//! and none waiting in its socket), or, failing that, the one idle longest since its last
//! scrape, so idle sockets reopened as fast as they time out cannot lock Prometheus out.
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::server::{self, Conn, Limits, Listener};

/// The content type of the text format the registry writes (Prometheus asks for it).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long a scraper may take to send its request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapers served at once: Prometheus uses one connection per target; a few more leave
/// room for a person with curl, and no more are needed.
pub const MAX_CONNS: usize = 16;
/// A connection that scraped less than this long ago is not taken over (its answer may
/// still be on its way).
const JUST_SERVED: Duration = Duration::from_secs(1);

/// The `--metrics` flag of `taojie serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics: connections, refusals, bytes, failed
    /// handshakes, commands, files stored, chat members and lines, per service. A PORT alone
    /// means 127.0.0.1:PORT; another address exposes the counters (not secrets, but who is
    /// busy) to whoever can reach it, so give one explicitly only behind a firewall
    #[arg(long, value_name = "ADDR", global = true, value_parser = spec)]
    pub metrics: Option<String>,
}

/// Checks what `--metrics` takes (a PORT alone, or `HOST:PORT`) with the address parser;
/// returns it as given.
pub fn spec(s: &str) -> Result<String, crate::addr::AddrError> {
    match !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        true => crate::addr::parse(&format!("127.0.0.1:{s}"))?,
        false => crate::addr::parse(s)?,
    };
    Ok(s.to_string())
}

/// The address `--metrics` asks for: `PORT` alone on loopback, else `HOST:PORT`.
pub async fn address(spec: &str) -> Result<std::net::SocketAddr> {
    if let Ok(port) = spec.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    crate::addr::resolve_one(spec).await
}

/// Binds the endpoint at `spec` (see [`MetricsArgs`]), prints `metrics tcp ADDR`, and
/// returns the server to run until `shutdown`.
pub async fn serve(
    spec: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = ()> + Send + 'static> {
    let addr = address(spec)
        .await
        .with_context(|| format!("--metrics {spec:?}"))?;
    let listener = server::bind_tcp(addr).with_context(|| format!("--metrics {spec:?}"))?;
    let local = listener.local_addr()?;
    server::announce("metrics", "tcp", &local);
    if !local.ip().is_loopback() {
        warn!(%local, "metrics served beyond loopback, to anyone who can reach it");
    }
    // The framework lets a few more in than there are slots: a newcomer must be accepted
    // to take an idle connection's slot.
    let limits = Limits {
        max_conns: 4 * MAX_CONNS,
        idle_timeout: Some(Duration::from_secs(60)),
        grace: Duration::from_secs(1),
    };
    let slots = Arc::new(Slots::default());
    Ok(server::serve_stream(
        "metrics",
        Listener::Tcp(listener),
        limits,
        move |conn| connection(conn, slots.clone()),
        shutdown,
    ))
}

/// Serves one scraper's connection: requests until it closes, or until a newcomer takes its
/// slot.
async fn connection(conn: Conn, slots: Arc<Slots>) -> io::Result<()> {
    use std::os::fd::AsFd;
    let socket = conn.as_fd().try_clone_to_owned().ok();
    let Some(slot) = Slots::join(&slots, socket) else {
        debug!("metrics endpoint busy with scrapes; a newcomer closed");
        return Ok(());
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(8192)
        .serve_connection(
            TokioIo::new(conn),
            service_fn(|req: Request<hyper::body::Incoming>| {
                slot.served();
                async move { Ok::<_, Infallible>(route(&req)) }
            }),
        );
    tokio::select! {
        served = served => if let Err(e) = served {
            debug!(error = %e, "metrics connection ended");
        },
        _ = slot.taken.cancelled() => debug!("metrics connection closed for a newcomer"),
    }
    Ok(())
}

/// The endpoint's slots, and when each last asked for something.
#[derive(Default)]
struct Slots {
    open: Mutex<Vec<SlotState>>,
    next: std::sync::atomic::AtomicU64,
}

struct SlotState {
    id: u64,
    /// When it last had a scrape answered (`None`: never yet).
    served: Option<Instant>,
    opened: Instant,
    taken: CancellationToken,
    /// Its socket, to see whether a request is waiting in it.
    socket: Option<std::os::fd::OwnedFd>,
}

impl SlotState {
    /// Whether it has asked nothing: no scrape served, no byte waiting (or its peer gone).
    fn silent(&self) -> bool {
        if self.served.is_some() {
            return false;
        }
        let Some(socket) = &self.socket else {
            return true;
        };
        let mut byte = [std::mem::MaybeUninit::uninit()];
        // The socket is non-blocking (tokio's): nothing waiting is an error, not a wait.
        !matches!(socket2::SockRef::from(socket).peek(&mut byte), Ok(n) if n > 0)
    }
}

/// One connection's slot; dropping it frees the slot.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    taken: CancellationToken,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SlotState>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection: a free one, else the one of the connection that has
    /// waited longest without asking anything, else of the one idle longest since its last
    /// scrape (but not within [`JUST_SERVED`] of it); `None` when every slot is busy with
    /// scrapes.
    fn join(slots: &Arc<Slots>, socket: Option<std::os::fd::OwnedFd>) -> Option<Slot> {
        let now = Instant::now();
        let mut open = slots.lock();
        if open.len() >= MAX_CONNS {
            let silent = open
                .iter()
                .enumerate()
                .filter(|(_, s)| s.silent())
                .min_by_key(|(_, s)| s.opened)
                .map(|(i, _)| i);
            let idle = || {
                open.iter()
                    .enumerate()
                    .filter_map(|(i, s)| Some((i, s.served?)))
                    .filter(|(_, t)| now.duration_since(*t) >= JUST_SERVED)
                    .min_by_key(|(_, t)| *t)
                    .map(|(i, _)| i)
            };
            let victim = silent.or_else(idle)?;
            open.swap_remove(victim).taken.cancel();
        }
        let id = slots
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let taken = CancellationToken::new();
        open.push(SlotState {
            id,
            served: None,
            opened: now,
            taken: taken.clone(),
            socket,
        });
        Some(Slot {
            slots: slots.clone(),
            id,
            taken,
        })
    }
}

impl Slot {
    /// A request came and is being answered.
    fn served(&self) {
        if let Some(s) = self.slots.lock().iter_mut().find(|s| s.id == self.id) {
            s.served = Some(Instant::now());
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().retain(|s| s.id != self.id);
    }
}

fn route(req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(crate::metrics::encode())));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
