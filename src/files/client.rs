//! The clients' connection, what `put` and `get` report alike, and `taojie ls` (`put` is in
//! [`put`](mod@super::put), `get` in [`download`](super::download)).
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::net::TcpStream;

use super::link::Link;
use super::names::escape;
use super::partial::NoSpace;
use super::progress::{FileReport, human};
use super::protocol::Msg;
use super::retry::RetryOpts;
use super::stall::Stall;
use super::{LsOptions, SERVICE};
use crate::framing::native::kind_of;
use crate::framing::{FramedStream, hello};
use crate::proxy_wire::ProxyUrl;
use crate::secure::flags::NoKey;
use crate::secure::{self, HandshakeError};

/// A files connection as the clients hold it: framed, encrypted, watched for stalls.
pub type Conn = Link<Stall<TcpStream>>;

/// Connects, runs the handshake (with `key`, or `identity`, else taojie's own key if there is
/// one, else none) and says hello for the files service. The connection fails once no byte
/// has moved for `stall`, connecting included.
pub async fn connect(
    addr: &str,
    key: Option<&Path>,
    identity: Option<&Path>,
    proxy: Option<&ProxyUrl>,
    stall: Duration,
) -> Result<Conn> {
    let auth = secure::flags::client_auth(key, identity, NoKey::DefaultOrNone, addr)?;
    let (stream, sa) = crate::proxy_wire::connect_tcp(addr, proxy, stall).await?;
    stream.set_nodelay(true)?;
    crate::sys::keepalive(&stream, crate::sys::CLIENT_KEEPALIVE);
    let stream = match secure::connect_to(Stall::new(stream, stall), &auth, &sa, SERVICE).await {
        Ok(s) => s,
        // No key of ours, nor given: the same words as every client's without one.
        Err(e) => match &e.cause {
            HandshakeError::Unkeyed(takes) => {
                bail!("{sa}: {}", secure::flags::no_key_advice(Some(takes), false))
            }
            _ => return Err(e.into()),
        },
    };
    let mut t = FramedStream::new(stream);
    hello::client(&mut t, SERVICE).await?;
    Ok(Link::new(t))
}

/// Connects with the flags of `put` and `get`.
pub(super) async fn connect_with(addr: &str, opts: &super::ClientOpts) -> Result<Conn> {
    let stall = opts.retry.stall();
    let (key, identity) = (opts.key.as_deref(), opts.identity.as_deref());
    connect(addr, key, identity, opts.proxy.as_ref(), stall).await
}

pub(super) fn failed(name: &str, size: u64, status: &'static str, message: String) -> FileReport {
    FileReport {
        name: name.to_string(),
        size,
        status,
        blake3: None,
        wire_bytes: 0,
        resumed_from: 0,
        message: Some(message),
    }
}

/// The one line a full disk gets: whose disk, which file, what did not fit, what stays.
pub(super) fn no_space(
    whose: &str,
    name: &str,
    size: u64,
    full: &NoSpace,
    again: &str,
) -> FileReport {
    let kept = match full.kept {
        0 => "nothing kept".to_string(),
        n => format!("{} kept: {again}", human(n)),
    };
    let message = format!(
        "{whose} no space left for {} ({}; {kept})",
        escape(name),
        full.detail
    );
    failed(name, size, "no_space", message)
}

/// `taojie ls`: one line per entry (kind, size, time, name), or JSON.
pub async fn ls(args: LsOptions) -> Result<ExitCode> {
    let stall = RetryOpts::default().stall();
    let mut t = connect(
        &args.addr,
        args.key.as_deref(),
        args.identity.as_deref(),
        args.proxy.as_ref(),
        stall,
    )
    .await?;
    t.send_control(&Msg::Ls {
        dir: args.dir.clone(),
    })
    .await?;
    let mut all = Vec::new();
    let listed = loop {
        match t.recv_control::<Msg>().await? {
            Msg::Entries { entries } => all.extend(entries),
            Msg::End => break Ok(()),
            Msg::Error { message } => break Err(anyhow::anyhow!("{}", escape(&message))),
            other => {
                break Err(anyhow::anyhow!(
                    "protocol error: unexpected {}",
                    kind_of(&other)
                ));
            }
        }
    };
    // Closed properly even after a refusal, so the server sees the client leave, not a
    // connection cut short.
    let _ = t.close().await;
    listed?;
    if args.json {
        println!("{}", serde_json::to_string(&all)?);
    } else {
        for e in &all {
            let when = chrono::DateTime::from_timestamp(e.mtime, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let size = if e.kind == "file" {
                human(e.size)
            } else {
                "-".into()
            };
            let slash = if e.kind == "dir" { "/" } else { "" };
            // Every field from the network is escaped, the kind as much as the name.
            println!(
                "{:<4} {size:>11}  {when}  {}{slash}",
                escape(&e.kind),
                escape(&e.name)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
