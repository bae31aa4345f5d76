//! `taojie serve files`: the native listener (and the classic one when asked for), and one
//! connection's requests: put, get, ls.
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::classic;
use super::link::Link;
use super::names::{self, RelName, escape};
use super::partial::{NoSpace, Partial};
use super::protocol::{Entry, FileHeader, Msg};
use super::receive::{self, Outcome};
use super::send::{self, Sent};
use super::state::State;
use super::store::{Found, Root};
use super::{DEFAULT_PORT, SERVICE, ServeOptions};
use crate::framing::native::kind_of;
use crate::framing::{FrameError, FramedStream, hello};
use crate::server::{self, Conn, Listener};

/// Entries per `entries` message stay well under the 64 KiB control limit.
const LIST_BATCH_BYTES: usize = 32 * 1024;

/// Runs the files service until `shutdown` is cancelled.
pub async fn serve(args: ServeOptions, shutdown: CancellationToken) -> Result<()> {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
    let addr = crate::addr::resolve_one(&listen).await?;
    let classic_addr = match &args.classic {
        Some(a) => Some(crate::addr::resolve_one(a).await?),
        None => None,
    };
    let web_addr = match &args.web {
        Some(a) => Some(crate::addr::resolve_one(a).await?),
        None => None,
    };
    let chunk = args.web_chunk.unwrap_or(super::web::DEFAULT_CHUNK);
    if chunk == 0 || !chunk.is_multiple_of(super::tree::SEGMENT) {
        anyhow::bail!("--web-chunk {chunk}: a multiple of 4M (4194304 bytes)");
    }
    let state = Arc::new(State::from_args(&args, addr, classic_addr, web_addr)?);
    let limits = args.limits.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let native = Listener::Tcp(server::bind_tcp(addr)?);
    server::announce(SERVICE, "tcp", &native.local_display());
    let st = state.clone();
    tasks.spawn(server::serve_stream(
        "files",
        native,
        limits.clone(),
        move |conn| handle(conn, st.clone()),
        shutdown.clone().cancelled_owned(),
    ));
    if let Some(a) = classic_addr {
        let listener = Listener::Tcp(server::bind_tcp(a)?);
        server::announce("files-classic", "tcp", &listener.local_display());
        let st = state.clone();
        tasks.spawn(server::serve_stream(
            "files-classic",
            listener,
            limits,
            move |conn| classic::handle(conn, st.clone()),
            shutdown.clone().cancelled_owned(),
        ));
    }
    if let Some(a) = web_addr {
        let listener = server::bind_tcp(a)?;
        let opts = super::web::Options { chunk };
        let limits = args.limits.clone();
        tasks.spawn(super::web::start(
            listener,
            state.clone(),
            &opts,
            limits,
            shutdown.clone(),
        )?);
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One native connection: authenticate, hello, then requests until the client leaves.
async fn handle(conn: Conn, state: Arc<State>) -> io::Result<()> {
    let peer = conn.peer().clone();
    let handshake = crate::secure::server(conn, &state.auth);
    let Some((stream, _)) = state
        .preauth
        .handshake(&peer, "handshake refused", handshake)
        .await
    else {
        return Ok(());
    };
    let mut t = FramedStream::new(stream);
    if let Err(e) = hello::server(&mut t, SERVICE).await {
        crate::server::refused("files", "hello failed", &peer, &e);
        return Ok(());
    }
    let mut t = Link::new(t);
    let from = match &peer {
        crate::server::Peer::Tcp(a) => Some(a.ip()),
        crate::server::Peer::Unix => None,
    };
    match serve_requests(&mut t, state, from).await {
        Ok(()) | Err(FrameError::Closed) => {}
        Err(FrameError::Io(e)) => warn!(error = %e, "connection lost"),
        Err(e) => {
            warn!(error = %e, "connection ended");
            // Tell the client why before closing; protocol errors are safe to show.
            let message = e.to_string();
            let _ = t.send_control(&Msg::Error { message }).await;
        }
    }
    Ok(())
}

async fn serve_requests<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    state: Arc<State>,
    from: Option<IpAddr>,
) -> Result<(), FrameError> {
    loop {
        match t.recv_control::<Msg>().await? {
            Msg::PutFile {
                header,
                overwrite,
                fresh,
            } => {
                let name = header.name.clone();
                let (took_over, upload) = state.uploads.begin(&name, from);
                if took_over {
                    info!(name = %escape(&name), "upload taken over from an earlier connection of the same address");
                }
                // Directory walks, statvfs and a possible wait for a dying connection's lock
                // stay off the async workers.
                let (st, h) = (state.clone(), header.clone());
                let opened =
                    tokio::task::spawn_blocking(move || accept_put(&st, &h, overwrite, fresh))
                        .await
                        .unwrap_or_else(|e| {
                            let message = format!("internal error: {e}");
                            Err(Msg::Refuse { message })
                        });
                match opened {
                    Err(have @ Msg::Have { .. }) => {
                        t.send_control(&have).await?;
                        match receive::same(t).await? {
                            true => {
                                info!(name = %escape(&name), "upload not needed: the same file is there")
                            }
                            false => {
                                info!(name = %escape(&name), "upload refused: another file of that size is there")
                            }
                        }
                    }
                    Err(refusal) => {
                        let reason = match &refusal {
                            Msg::Refuse { message } | Msg::Error { message } => escape(message),
                            other => kind_of(other),
                        };
                        info!(name = %escape(&name), %reason, "upload refused");
                        t.send_control(&refusal).await?;
                    }
                    Ok(partial) => {
                        let resumed = partial.offset;
                        let hidden = ProgressBar::hidden();
                        let never = CancellationToken::new();
                        let receiving = receive::receive(t, partial, &hidden, &never);
                        // Dropping the reception makes its writer record what it verified
                        // and let the file go, for the newer connection to resume.
                        let out = tokio::select! {
                            out = receiving => out?,
                            () = upload.stop.cancelled() => {
                                info!(name = %escape(&name), "upload left to a newer connection; closing this one");
                                return Err(FrameError::Closed);
                            }
                        };
                        match out {
                            Outcome::Verified { blake3, received } => {
                                crate::metrics::service(SERVICE).stored(header.size);
                                info!(name = %escape(&name), size = header.size, received, resumed, %blake3, "upload verified")
                            }
                            Outcome::Failed(m) => {
                                warn!(name = %escape(&name), error = %m, "upload discarded")
                            }
                            Outcome::NoSpace(full) => {
                                warn!(name = %escape(&name), detail = %full.detail, kept = full.kept, "upload stopped: no space left")
                            }
                            Outcome::Stopped { kept, .. } => {
                                info!(name = %escape(&name), kept, "upload stopped by the client; the verified part kept for a resume")
                            }
                        }
                    }
                }
            }
            Msg::PutDir { name } => {
                let answer = match make_dir(&state, &name).await {
                    Ok(()) => {
                        info!(name = %escape(&name), "directory made");
                        Msg::End
                    }
                    Err(message) => {
                        info!(name = %escape(&name), reason = %message, "directory refused");
                        Msg::Refuse { message }
                    }
                };
                t.send_control(&answer).await?;
            }
            Msg::Get { .. } if state.upload_only => {
                let message = "this server is upload-only".to_string();
                info!(reason = %message, "download refused");
                t.send_control(&Msg::Error { message }).await?;
                t.send_control(&Msg::End).await?;
            }
            Msg::Get { names } => {
                for name in names {
                    serve_get(t, &state, &name).await?;
                }
                t.send_control(&Msg::End).await?;
            }
            Msg::Ls { .. } if state.upload_only => {
                let message = "this server is upload-only".to_string();
                info!(reason = %message, "listing refused");
                t.send_control(&Msg::Error { message }).await?;
            }
            Msg::Ls { dir } => serve_ls(t, &state, &dir).await?,
            // A client's stop that crossed the end of its file: nothing left to stop.
            Msg::Stop => {}
            other => {
                let message = format!("unexpected request: {}", kind_of(&other));
                t.send_control(&Msg::Error {
                    message: message.clone(),
                })
                .await?;
                return Err(FrameError::Unexpected(message));
            }
        }
    }
}

/// An error from the server's file system, worded so that the client's user can tell it
/// is about the server's files and not a local one.
fn on_server(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory on the server".into(),
        io::ErrorKind::NotADirectory if e.get_ref().is_none() => {
            "not a directory on the server".into()
        }
        io::ErrorKind::PermissionDenied if e.get_ref().is_none() => {
            "permission denied on the server".into()
        }
        _ => format!("{e} (on the server)"),
    }
}

/// Checks an upload's name, target and size; the error is the answer sent to the client
/// (`refuse`, or `no_space` when the disk cannot hold it).
fn accept_put(
    state: &State,
    header: &FileHeader,
    overwrite: bool,
    fresh: bool,
) -> Result<Partial, Msg> {
    let refuse = |message: String| Msg::Refuse { message };
    if state.read_only {
        return Err(refuse("this server is read-only".into()));
    }
    let name = names::validate(&header.name)
        .map_err(|e| refuse(format!("name {} refused: {e}", escape(&header.name))))?;
    Partial::open_with(&state.root, &name, header, overwrite, fresh).map_err(|e| {
        // The name is taken: the same file there is no reason to refuse.
        let taken = e.kind() == io::ErrorKind::AlreadyExists && !overwrite;
        let have = taken
            .then(|| receive::have(&state.root, &name, header))
            .flatten();
        have.unwrap_or_else(|| refusal(&name, &e))
    })
}

/// The answer to an upload that [`Partial::open_with`] turned down with `e`.
fn refusal(name: &RelName, e: &io::Error) -> Msg {
    match NoSpace::of(e) {
        Some(full) => Msg::NoSpace {
            detail: full.detail.clone(),
            kept: full.kept,
        },
        None if NoSpace::is_full(e) => Msg::NoSpace {
            detail: "the disk is full".into(),
            kept: 0,
        },
        // Exists, busy: the message already names the file.
        None if e.kind() == io::ErrorKind::AlreadyExists => Msg::Refuse {
            message: e.to_string(),
        },
        None => Msg::Refuse {
            message: format!("name {name} refused: {e}"),
        },
    }
}

/// Makes the directory `raw` beneath the root for an upload (the answer's message if not).
async fn make_dir(state: &State, raw: &str) -> Result<(), String> {
    if state.read_only {
        return Err("this server is read-only".into());
    }
    let name = names::validate(raw).map_err(|e| format!("name {} refused: {e}", escape(raw)))?;
    let root = state.root.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || root.make_dirs(&n))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
        .map_err(|e| format!("{}: {}", escape(raw), on_server(&e)))
}

/// Sends one requested name: a file, or every regular file under a directory. Each file is
/// opened beneath the root once, and its header and bytes both come from that descriptor.
async fn serve_get<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    state: &State,
    raw: &str,
) -> Result<(), FrameError> {
    let found = match names::validate(raw) {
        Err(e) => Err(format!("{}: {e}", escape(raw))),
        Ok(name) => {
            let root = state.root.clone();
            let n = name.clone();
            tokio::task::spawn_blocking(move || root.find(&n))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
                .map(|f| (name, f))
                .map_err(|e| format!("{}: {}", escape(raw), on_server(&e)))
        }
    };
    let (name, found) = match found {
        Ok(f) => f,
        Err(message) => {
            // A name that is not there or not allowed: the client's doing, so info.
            info!(reason = %message, "download refused");
            return t.send_control(&Msg::Error { message }).await;
        }
    };
    let top = name.file_name().to_string();
    match found {
        Found::File(file) => send_one(t, Ok(file), top).await,
        Found::Tree(tree) => {
            // Directories nothing else would make: the empty ones, or the top when it is one.
            let dirs: Vec<String> = match tree.files.is_empty() && tree.empty_dirs.is_empty() {
                true => vec![top.clone()],
                false => tree
                    .empty_dirs
                    .iter()
                    .map(|d| format!("{top}/{}", d.as_str()))
                    .collect(),
            };
            for name in dirs {
                t.send_control(&Msg::Dir { name }).await?;
            }
            for rel in tree.files {
                let full = names::validate(&format!("{}/{}", name.as_str(), rel.as_str()));
                let opened = match full {
                    Ok(full) => open_blocking(&state.root, full).await,
                    Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
                };
                send_one(t, opened, format!("{top}/{}", rel.as_str())).await?;
            }
            Ok(())
        }
    }
}

/// Opens a file for a download off the async workers.
async fn open_blocking(root: &Root, name: RelName) -> io::Result<File> {
    let root = root.clone();
    tokio::task::spawn_blocking(move || root.open_file(&name))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// Offers one opened file to the client as `rel` and sends it if accepted.
async fn send_one<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    opened: io::Result<File>,
    rel: String,
) -> Result<(), FrameError> {
    let header = opened.and_then(|f| send::header_for(&f, rel.clone()).map(|h| (f, h)));
    let (file, header) = match header {
        Ok(fh) => fh,
        Err(e) => {
            // The name as the client knows it, not the server's own path.
            let message = format!("{}: {}", escape(&rel), on_server(&e));
            info!(reason = %message, "download refused");
            return t.send_control(&Msg::Error { message }).await;
        }
    };
    t.send_control(&Msg::File {
        header: header.clone(),
    })
    .await?;
    let never = CancellationToken::new();
    match send::send(t, file, &header, &ProgressBar::hidden(), &never).await {
        Ok(Sent::Verified { sent, .. }) => {
            info!(name = %escape(&header.name), sent, "download verified")
        }
        Ok(Sent::UpToDate { .. }) => {
            info!(name = %escape(&header.name), "download not needed: the client has the same file")
        }
        Ok(Sent::Refused(m) | Sent::Failed(m)) => {
            info!(name = %escape(&header.name), reason = %m, "download not taken")
        }
        Ok(Sent::Stopped(_)) => {}
        Ok(Sent::NoSpace(full)) => {
            info!(name = %escape(&header.name), detail = %full.detail, kept = full.kept, "download not taken: the client has no space left")
        }
        Err(e) => return Err(FrameError::Unexpected(e.to_string())),
    }
    Ok(())
}

async fn serve_ls<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    state: &State,
    dir: &str,
) -> Result<(), FrameError> {
    let listed = match names::validate_dir(dir) {
        Err(e) => Err(e.to_string()),
        Ok(d) => {
            let root = state.root.clone();
            // `ls` of a file shows its entry, as ls(1) does.
            let list = move || match (root.list(d.as_ref()), &d) {
                (Err(e), Some(name)) if e.kind() == io::ErrorKind::NotADirectory => {
                    root.entry(name).map(|one| vec![one]).map_err(|_| e)
                }
                (listed, _) => listed,
            };
            tokio::task::spawn_blocking(list)
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
                .map_err(|e| on_server(&e))
        }
    };
    let entries = match listed {
        Ok(e) => e,
        Err(e) => {
            let message = format!("{}: {e}", escape(dir));
            info!(reason = %message, "listing refused");
            return t.send_control(&Msg::Error { message }).await;
        }
    };
    let mut batch = Vec::new();
    let mut bytes = 0;
    for e in entries {
        bytes += e.name.len() + 64;
        batch.push(Entry {
            name: e.name,
            kind: e.kind.as_str().into(),
            size: e.size,
            mtime: e.mtime_ns.div_euclid(1_000_000_000),
        });
        if bytes > LIST_BATCH_BYTES {
            let entries = std::mem::take(&mut batch);
            t.send_control(&Msg::Entries { entries }).await?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        t.send_control(&Msg::Entries { entries: batch }).await?;
    }
    t.send_control(&Msg::End).await
}
