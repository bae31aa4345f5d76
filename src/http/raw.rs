//! `taojie http --raw`: seed 000's HTTP client. A request written by hand — `GET PATH
//! HTTP/1.1`, `Host`, `Connection: close` — on a plain TCP socket; the request is shown on
//! stderr exactly as sent, and the reply goes to stdout exactly as it came (status line,
//! headers, the blank line, and the body with any chunk sizes), until the server closes.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Credentials;

/// Sends the request and copies the reply to stdout; `timeout` bounds the connect and each
/// read.
pub async fn run(url: &Url, auth: Option<&Credentials>, timeout: Duration) -> Result<ExitCode> {
    if url.scheme() != "http" {
        bail!("--raw speaks plain HTTP on a socket; use it with http:// URLs");
    }
    let host = url.host_str().context("the URL names no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = crate::addr::resolve_one(&format!(
        "{}:{port}",
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    ))
    .await?;
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connect to {addr}"))?;
    let request = request_bytes(url, auth, false);
    // What was sent, credentials masked: they are never shown.
    std::io::stderr().write_all(&request_bytes(url, auth, true))?;
    stream
        .write_all(&request)
        .await
        .context("send the request")?;
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(timeout, stream.read(&mut buf))
            .await
            .context("timed out waiting for the reply")?
            .context("read the reply")?;
        if n == 0 {
            break;
        }
        match out.write_all(&buf[..n]).await {
            // The reader stopped reading (`| head`): done, quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            r => r.context("write to stdout")?,
        }
    }
    let _ = out.flush().await;
    Ok(ExitCode::SUCCESS)
}

/// The request the seed writes, with the URL's path and query, and basic auth when the URL
/// carried credentials (shown as `(hidden)` when `masked`).
pub fn request_bytes(url: &Url, auth: Option<&Credentials>, masked: bool) -> Vec<u8> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some((user, password)) = auth {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.as_deref().unwrap_or("")));
        let shown = if masked { "(hidden)" } else { token.as_str() };
        req.push_str(&format!("Authorization: Basic {shown}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}
