//! `taojie listen`: bind, say where on stderr, then serve one peer (or, with `--keep-open`,
//! one peer after another, all sharing the one stdin).
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use super::connect::finish;
use super::encrypted::Halves;
use super::pump::{self, MAX_DATAGRAM, Peers, STREAM_CHUNK};
use super::stdio::{Input, Output};
use super::{End, ListenOptions, note, secs};
use crate::retry::Backoff;
use crate::secure::ServerAuth;
use crate::server::{self, Listener, Peer, PreAuth};
use crate::tls::server::ServerTls;

/// How long a listener stopped by a signal waits for stdout to take what already arrived.
const FLUSH_ON_SIGNAL: Duration = Duration::from_secs(2);

/// What `listen` bound.
enum Bound {
    Stream(Listener),
    Datagram(UdpSocket),
}

/// Runs `taojie listen`.
pub(super) async fn run(args: ListenOptions) -> Result<ExitCode> {
    let bound = if args.udp {
        Bound::Datagram(server::bind_udp(
            crate::addr::resolve_one(&args.addr).await?,
        )?)
    } else if args.unix {
        Bound::Stream(server::bind_unix(Path::new(&args.addr))?)
    } else {
        let addr = crate::addr::resolve_one(&args.addr).await?;
        Bound::Stream(Listener::Tcp(server::bind_tcp(addr)?))
    };
    let auth = match args.keys.any() {
        true => Some(Arc::new(args.keys.auth("listen", &[])?)),
        false => None,
    };
    let tls = super::tls::server(&args.tls, &args.addr)?;
    // Stderr, not stdout: stdout carries the peer's bytes (see PRODUCT.md).
    match &bound {
        Bound::Stream(l) => eprintln!("listen {} {}", l.proto(), l.local_display()),
        Bound::Datagram(s) => eprintln!("listen udp {}", s.local_addr()?),
    }
    crate::log::serving();
    let stop = Stop::new();
    let output = Output::spawn().context("cannot write to stdout")?;
    let mut input = Input::spawn(if args.udp { MAX_DATAGRAM } else { STREAM_CHUNK });
    let serve = async {
        match &bound {
            Bound::Stream(listener) => {
                let keyed = auth.clone().map(|a| Keyed {
                    auth: a,
                    guard: Arc::new(PreAuth::live(args.preauth.clone()).for_service("listen")),
                    pending: JoinSet::new(),
                });
                streams(listener, &args, keyed, tls.as_ref(), &mut input, &output).await
            }
            Bound::Datagram(socket) => {
                let peers = match args.keep_open {
                    true => Peers::Latest(None),
                    false => Peers::First(None),
                };
                let linger = secs(args.linger);
                let end = pump::datagrams(socket, peers, &mut input, &output, linger).await;
                end.context("udp peer")
            }
        }
    };
    let end = tokio::select! {
        end = serve => end,
        code = stop.wait() => {
            note(args.verbose, format_args!("stopped by a signal"));
            let _ = tokio::time::timeout(FLUSH_ON_SIGNAL, output.finish()).await;
            return Ok(code);
        }
    };
    // `bound` (a Unix socket's file with it) goes when this returns, error or not.
    finish(end, output, args.verbose).await
}

/// Accepts peers and bridges each in turn: one, or one after another with `--keep-open`,
/// where a peer's error is reported and the next peer is served.
async fn streams(
    listener: &Listener,
    args: &ListenOptions,
    mut keyed: Option<Keyed>,
    tls: Option<&ServerTls>,
    input: &mut Input,
    output: &Output,
) -> Result<End> {
    let v = args.verbose;
    // Pauses after a failed accept (EMFILE, say) before trying again with `--keep-open`.
    let mut backoff = Backoff::accept();
    loop {
        let (end, who) = match (listener, keyed.as_mut()) {
            (Listener::Tcp(l), Some(keyed)) => match keyed.next_peer(l, v).await {
                Ok(((r, w), who)) => (pump::bridge(r, w, input, output).await, who),
                Err(e) => {
                    accept_failed(e, args.keep_open, &mut backoff).await?;
                    continue;
                }
            },
            (Listener::Tcp(l), None) => match l.accept().await {
                Ok((stream, peer)) => {
                    let who = format!("tcp {peer}");
                    note(v, format_args!("connection from {who}"));
                    let _ = stream.set_nodelay(true);
                    if let Some(tls) = tls {
                        (tls_bridge(tls, stream, v, input, output).await, who)
                    } else {
                        let (r, w) = stream.into_split();
                        (pump::bridge(r, w, input, output).await, who)
                    }
                }
                Err(e) => {
                    accept_failed(e, args.keep_open, &mut backoff).await?;
                    continue;
                }
            },
            (Listener::Unix(l, path), _) => match l.accept().await {
                Ok((stream, _)) => {
                    let who = format!("unix {}", path.display());
                    note(v, format_args!("connection on {who}"));
                    if let Some(tls) = tls {
                        (tls_bridge(tls, stream, v, input, output).await, who)
                    } else {
                        let (r, w) = stream.into_split();
                        (pump::bridge(r, w, input, output).await, who)
                    }
                }
                Err(e) => {
                    accept_failed(e, args.keep_open, &mut backoff).await?;
                    continue;
                }
            },
        };
        backoff.reset();
        match end {
            Ok(End::PeerClosed) if args.keep_open => {
                note(v, format_args!("{who} left; waiting for the next peer"))
            }
            Ok(end) => return Ok(end),
            Err(e) if args.keep_open => eprintln!("taojie: warning: {who}: {e}"),
            Err(e) => return Err(e).context(who),
        }
    }
}

/// Runs the TLS handshake with an accepted peer, then bridges it as a plain one; a failed
/// handshake is the peer's error (reported, and with --keep-open the next peer is served).
async fn tls_bridge<S>(
    tls: &ServerTls,
    stream: S,
    verbose: bool,
    input: &mut Input,
    output: &Output,
) -> io::Result<End>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let stream = super::tls::accept(tls, stream, verbose)
        .await
        .map_err(|e| io::Error::other(format!("{e:#}")))?;
    let cut = std::sync::Arc::default();
    let (r, w) = tokio::io::split(stream);
    let r = super::tls::Lenient::new(r, std::sync::Arc::clone(&cut));
    let end = pump::bridge(r, w, input, output).await;
    super::tls::Lenient::<()>::warn(&cut);
    end
}

/// An encrypted listener's handshakes: each runs in a task of its own under the pre-auth
/// guard, so one slow or hostile connection cannot hold the door while the real peer waits.
struct Keyed {
    auth: Arc<ServerAuth>,
    guard: Arc<PreAuth>,
    /// Handshakes under way; the first to succeed is the next peer.
    pending: JoinSet<Option<(Halves<tokio::net::TcpStream>, String)>>,
}

impl Keyed {
    /// Accepts connections and runs their handshakes until one peer has proven its key.
    /// Handshakes still under way go on while that peer is served (later ones wait in the
    /// backlog); with --keep-open the next to succeed is the next peer.
    async fn next_peer(
        &mut self,
        l: &TcpListener,
        verbose: bool,
    ) -> io::Result<(Halves<tokio::net::TcpStream>, String)> {
        loop {
            tokio::select! {
                Some(done) = self.pending.join_next() => {
                    if let Ok(Some(peer)) = done {
                        return Ok(peer);
                    }
                }
                accepted = l.accept() => {
                    let (stream, addr) = accepted?;
                    let who = format!("tcp {addr}");
                    note(verbose, format_args!("connection from {who}"));
                    let _ = stream.set_nodelay(true);
                    let (auth, guard) = (self.auth.clone(), self.guard.clone());
                    self.pending.spawn(async move {
                        let handshake = async {
                            super::encrypted::server(stream, &auth)
                                .await
                                .map_err(|e| format!("{e:#}"))
                        };
                        let peer = Peer::Tcp(addr);
                        let halves = guard.handshake(&peer, "handshake refused", handshake).await?;
                        Some((halves, who))
                    });
                }
            }
        }
    }
}

/// A failed accept ends a one-peer listener; with `--keep-open` it is reported and, after a
/// pause (EMFILE does not clear at once; the framework's accept policy), the listener goes on.
async fn accept_failed(e: io::Error, keep_open: bool, backoff: &mut Backoff) -> Result<()> {
    if !keep_open {
        return Err(e).context("accept failed");
    }
    eprintln!("taojie: warning: accept failed: {e}");
    tokio::time::sleep(backoff.next_wait()).await;
    Ok(())
}

/// SIGINT and SIGTERM, registered up front so a signal during setup is not lost. Caught
/// rather than left to kill the process so a Unix socket's file is removed on the way out.
struct Stop {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    fn new() -> Stop {
        Stop {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Waits for a signal; the exit status is the shell's 128 + signal number.
    async fn wait(mut self) -> ExitCode {
        async fn on(sig: &mut Option<tokio::signal::unix::Signal>) -> io::Result<()> {
            match sig {
                Some(s) => s.recv().await.map(drop).ok_or(io::ErrorKind::Other.into()),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = on(&mut self.int) => ExitCode::from(128 + libc::SIGINT as u8),
            _ = on(&mut self.term) => ExitCode::from(128 + libc::SIGTERM as u8),
        }
    }
}
