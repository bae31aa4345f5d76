//! `taojie connect`: reach the peer (each resolved address in turn, each within `--wait`),
//! then hand the socket to the pumps.
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UdpSocket, UnixStream};
use tokio::time::timeout;

use super::pump::{self, MAX_DATAGRAM, Peers, STREAM_CHUNK};
use super::stdio::{Input, Output};
use super::{ConnectOptions, End, note, secs};

/// Runs `taojie connect`.
pub(super) async fn run(args: ConnectOptions) -> Result<ExitCode> {
    let wait = secs(if args.wait > 0.0 {
        args.wait
    } else {
        f64::INFINITY
    });
    let v = args.verbose;
    // Stdin is read from the start, so what was piped in is queued by the time the peer
    // answers, and goes out even if the peer closes at once.
    if args.udp {
        let mut input = Input::spawn(MAX_DATAGRAM);
        let (socket, peer) = udp(&args.addr).await?;
        note(v, format_args!("sending to udp {peer}"));
        let output = Output::spawn().context("cannot write to stdout")?;
        let linger = secs(args.linger);
        let end = pump::datagrams(&socket, Peers::Connected, &mut input, &output, linger)
            .await
            .map_err(|e| refused_or(e, &format!("udp {peer}")));
        return finish(end, output, v).await;
    }
    let input = Input::spawn(STREAM_CHUNK);
    if args.unix {
        let path = Path::new(&args.addr);
        let stream = match timeout(wait, UnixStream::connect(path)).await {
            Ok(s) => s.with_context(|| format!("cannot connect to unix {}", path.display()))?,
            Err(_) => bail!(
                "cannot connect to unix {}: no answer in {wait:?}",
                path.display()
            ),
        };
        let what = format!("unix {}", path.display());
        if let Some(options) = &args.tls {
            // No host in a path: the name to check is --sni's, else localhost.
            let tls = super::tls::connect(options, stream, "localhost", wait, v).await?;
            return tls_once(tls, input, &format!("{what} (TLS)"), v).await;
        }
        let (r, w) = stream.into_split();
        return bridge_once(r, w, input, &what, v).await;
    }
    let (stream, peer) = match &args.proxy {
        Some(proxy) => crate::proxy_wire::connect_tcp(&args.addr, Some(proxy), wait).await?,
        None => {
            let (stream, peer) = tcp(&args.addr, wait).await?;
            (stream, peer.to_string())
        }
    };
    if args.keys.any() {
        let auth = args
            .keys
            .auth(crate::secure::flags::NoKey::DefaultOrRefuse, &args.addr)?;
        let (r, w) = super::encrypted::client(stream, &auth)
            .await
            .with_context(|| format!("tcp {peer}"))?;
        return bridge_once(r, w, input, &format!("tcp {peer} (encrypted)"), v).await;
    }
    if let Some(options) = &args.tls {
        let host = crate::tls::host_of(&args.addr);
        let tls = super::tls::connect(options, stream, host, wait, v).await?;
        return tls_once(tls, input, &format!("tcp {peer} (TLS)"), v).await;
    }
    let (r, w) = stream.into_split();
    bridge_once(r, w, input, &format!("tcp {peer}"), v).await
}

/// Bridges one stream connection with stdin and stdout, start to end.
async fn bridge_once<R, W>(
    r: R,
    w: W,
    mut input: Input,
    what: &str,
    verbose: bool,
) -> Result<ExitCode>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    note(verbose, format_args!("connected to {what}"));
    let output = Output::spawn().context("cannot write to stdout")?;
    let end = pump::bridge(r, w, &mut input, &output).await;
    finish(end.with_context(|| what.to_string()), output, verbose).await
}

/// Bridges a TLS connection as [`bridge_once`] does a plain one; a peer that ends without
/// close_notify ends the stream, with a warning.
async fn tls_once<S>(tls: S, input: Input, what: &str, verbose: bool) -> Result<ExitCode>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cut = std::sync::Arc::default();
    let (r, w) = tokio::io::split(tls);
    let r = super::tls::Lenient::new(r, std::sync::Arc::clone(&cut));
    let code = bridge_once(r, w, input, what, verbose).await;
    super::tls::Lenient::<()>::warn(&cut);
    code
}

/// Ends a session: prints what already arrived, then reports how it ended. A peer that
/// closed, or a stdout reader that stopped reading, is success.
pub(super) async fn finish(end: Result<End>, output: Output, verbose: bool) -> Result<ExitCode> {
    let flushed = output.finish().await;
    match end? {
        End::PeerClosed => note(verbose, format_args!("peer closed")),
        End::StdoutClosed => note(verbose, format_args!("stdout closed; stopping")),
    }
    flushed.context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Connects over TCP to the first of `addr`'s addresses that answers.
async fn tcp(addr: &str, wait: Duration) -> Result<(TcpStream, SocketAddr)> {
    let candidates = crate::addr::resolve(addr).await?;
    let mut failures = Vec::new();
    for &peer in &candidates {
        let why = match timeout(wait, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                // Chunks are written whole; Nagle would only delay the small interactive ones.
                let _ = stream.set_nodelay(true);
                return Ok((stream, peer));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer in {wait:?}"),
        };
        failures.push((peer, why));
    }
    match failures.as_slice() {
        [(peer, why)] => bail!("cannot connect to tcp {peer}: {why}"),
        _ => {
            let each: Vec<String> = failures.iter().map(|(p, w)| format!("{p}: {w}")).collect();
            bail!("cannot connect to tcp {addr}: {}", each.join("; "))
        }
    }
}

/// A UDP socket connected to `addr`'s first address, so the kernel filters out strangers
/// and reports an ICMP port unreachable as ECONNREFUSED.
async fn udp(addr: &str) -> Result<(UdpSocket, SocketAddr)> {
    let peer = crate::addr::resolve_one(addr).await?;
    let local: SocketAddr = if peer.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .context("cannot open a udp socket")?;
    socket
        .connect(peer)
        .await
        .with_context(|| format!("cannot send to udp {peer}"))?;
    Ok((socket, peer))
}

/// Words a refused datagram the way a user thinks of it; other errors keep their own words.
fn refused_or(e: io::Error, what: &str) -> anyhow::Error {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        anyhow::anyhow!("{what}: connection refused (nothing is listening there)")
    } else {
        anyhow::Error::new(e).context(what.to_string())
    }
}
