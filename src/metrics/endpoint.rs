//! The metrics endpoint: `GET /metrics` over HTTP/1.1 on its own listener, served by the
//! same framework as the services (so it has a connection cap and idle timeout of its own),
//! with a bounded request head and a deadline for it. Everything else is a 404.
use std::convert::Infallible;
use std::future::Future;
use std::io;
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
use tracing::{debug, warn};

use crate::server::{self, Conn, Limits, Listener};

/// The content type of the text format the registry writes (Prometheus asks for it).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long a scraper may take to send its request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapers served at once: Prometheus uses one connection per target; a few more leave
/// room for a person with curl, and no more are needed.
const MAX_CONNS: usize = 16;

/// The `--metrics` flag of `taojie serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics: connections, refusals, bytes, failed
    /// handshakes, commands, files stored, chat members and lines, per service. A PORT alone
    /// means 127.0.0.1:PORT; another address exposes the counters (not secrets, but who is
    /// busy) to whoever can reach it, so give one explicitly only behind a firewall
    #[arg(long, value_name = "ADDR", global = true)]
    pub metrics: Option<String>,
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
    let limits = Limits {
        max_conns: MAX_CONNS,
        idle_timeout: Some(Duration::from_secs(60)),
        grace: Duration::from_secs(1),
    };
    Ok(server::serve_stream(
        "metrics",
        Listener::Tcp(listener),
        limits,
        connection,
        shutdown,
    ))
}

/// Serves one scraper's connection: requests until it closes.
async fn connection(conn: Conn) -> io::Result<()> {
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(8192)
        .serve_connection(
            TokioIo::new(conn),
            service_fn(|req: Request<hyper::body::Incoming>| async move {
                Ok::<_, Infallible>(route(&req))
            }),
        )
        .await;
    if let Err(e) = served {
        debug!(error = %e, "metrics connection ended");
    }
    Ok(())
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
    let mut r = Response::new(Full::new(Bytes::from(super::encode())));
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
