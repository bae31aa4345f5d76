//! `taojie serve files`: the native listener (and the classic one when asked for), and one
//! connection's requests: put, get, ls.
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use indicatif::ProgressBar;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::classic;
use super::link::Link;
use super::names::{self, PART_SUFFIX, RelName, STATE_SUFFIX, escape};
use super::partial::{NoSpace, Partial};
use super::protocol::{Entry, FileHeader, Msg};
use super::receive::{self, Outcome};
use super::send::{self, Sent};
use super::state::State;
use super::{DEFAULT_PORT, SERVICE, ServeArgs};
use crate::framing::{FrameError, Transport, hello};
use crate::server::{self, Conn, Listener};

/// Entries per `entries` message stay well under the 64 KiB control limit.
const LIST_BATCH_BYTES: usize = 32 * 1024;

/// Runs the files service until `shutdown` is cancelled.
pub async fn run(args: ServeArgs, shutdown: CancellationToken) -> Result<()> {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
    let addr = crate::addr::resolve_one(&listen).await?;
    let classic_addr = match &args.classic {
        Some(a) => Some(crate::addr::resolve_one(a).await?),
        None => None,
    };
    let state = Arc::new(State::from_args(&args, addr, classic_addr)?);
    let limits = args.limits.live();
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
    let mut t = Transport::new(stream);
    if let Err(e) = hello::server(&mut t, SERVICE).await {
        crate::log::refused("files", "hello failed", &peer, &e);
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
                    Err(refusal) => {
                        info!(name = %escape(&name), ?refusal, "upload refused");
                        t.send_control(&refusal).await?;
                    }
                    Ok(partial) => {
                        let resumed = partial.offset;
                        let hidden = ProgressBar::hidden();
                        let receiving = receive::receive(t, partial, &hidden);
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
                        }
                    }
                }
            }
            Msg::Get { .. } if state.upload_only => {
                let message = "this server is upload-only".into();
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
                let message = "this server is upload-only".into();
                t.send_control(&Msg::Error { message }).await?;
            }
            Msg::Ls { dir } => serve_ls(t, &state, &dir).await?,
            other => {
                let message = format!("unexpected request {other:?}");
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
        io::ErrorKind::PermissionDenied => "permission denied on the server".into(),
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
    let dir = names::parent_dir(&state.root, &name, true)
        .map_err(|e| refuse(format!("name {name} refused: {e}")))?;
    Partial::open_with(&dir, name.file_name(), header, overwrite, fresh).map_err(|e| {
        match NoSpace::of(&e) {
            Some(full) => Msg::NoSpace {
                detail: full.detail.clone(),
                kept: full.kept,
            },
            None if NoSpace::is_full(&e) => Msg::NoSpace {
                detail: "the disk is full".into(),
                kept: 0,
            },
            None => refuse(e.to_string()),
        }
    })
}

/// Sends one requested name: a file, or every regular file under a directory.
async fn serve_get<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    state: &State,
    raw: &str,
) -> Result<(), FrameError> {
    let found = names::validate(raw)
        .map_err(|e| format!("{}: {e}", escape(raw)))
        .and_then(|n| {
            names::existing(&state.root, Some(&n))
                .map(|p| (n, p))
                .map_err(|e| format!("{}: {}", escape(raw), on_server(&e)))
        });
    let (name, path) = match found {
        Ok(f) => f,
        Err(message) => return t.send_control(&Msg::Error { message }).await,
    };
    let files = match collect(&path, name.file_name()) {
        Ok(f) => f,
        Err(e) => {
            let message = format!("{name}: {}", on_server(&e));
            return t.send_control(&Msg::Error { message }).await;
        }
    };
    for (path, rel) in files {
        let header = match send::header_for(&path, rel.clone()) {
            Ok(h) => h,
            Err(e) => {
                // The name as the client knows it, not the server's own path.
                let message = format!("{}: {}", escape(&rel), on_server(&e));
                t.send_control(&Msg::Error { message }).await?;
                continue;
            }
        };
        t.send_control(&Msg::File {
            header: header.clone(),
        })
        .await?;
        match send::send(t, &path, &header, &ProgressBar::hidden()).await {
            Ok(Sent::Verified { sent, .. }) => {
                info!(name = %escape(&header.name), sent, "download verified")
            }
            Ok(Sent::Refused(m) | Sent::Failed(m)) => {
                info!(name = %escape(&header.name), reason = %m, "download not taken")
            }
            Ok(Sent::NoSpace(full)) => {
                info!(name = %escape(&header.name), detail = %full.detail, kept = full.kept, "download not taken: the client has no space left")
            }
            Err(e) => return Err(FrameError::Unexpected(e.to_string())),
        }
    }
    Ok(())
}

/// The regular files at `path` (itself, or under it), each with the name the client gets:
/// `top` and the path below it. Symbolic links inside a tree are skipped, not followed.
pub fn collect(path: &Path, top: &str) -> io::Result<Vec<(PathBuf, String)>> {
    let md = std::fs::metadata(path)?;
    if md.is_file() {
        return Ok(vec![(path.to_path_buf(), top.to_string())]);
    }
    if !md.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file or directory",
        ));
    }
    let mut out = Vec::new();
    let mut stack = vec![(path.to_path_buf(), top.to_string())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some(n) = e.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8: cannot be named on the wire
            };
            if n.ends_with(PART_SUFFIX) || n.ends_with(STATE_SUFFIX) {
                continue;
            }
            let ft = e.file_type()?;
            let child = format!("{rel}/{n}");
            if ft.is_dir() {
                stack.push((e.path(), child));
            } else if ft.is_file() {
                out.push((e.path(), child));
            }
        }
    }
    Ok(out)
}

async fn serve_ls<S: AsyncRead + AsyncWrite + Unpin>(
    t: &mut Link<S>,
    state: &State,
    dir: &str,
) -> Result<(), FrameError> {
    let listed = names::validate_dir(dir)
        .map_err(|e| e.to_string())
        .and_then(|d: Option<RelName>| {
            names::existing(&state.root, d.as_ref()).map_err(|e| on_server(&e))
        })
        .and_then(|p| list(&p).map_err(|e| on_server(&e)));
    let entries = match listed {
        Ok(e) => e,
        Err(e) => {
            let message = format!("{}: {e}", escape(dir));
            return t.send_control(&Msg::Error { message }).await;
        }
    };
    let mut batch = Vec::new();
    let mut bytes = 0;
    for e in entries {
        bytes += e.name.len() + 64;
        batch.push(e);
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

fn list(dir: &Path) -> io::Result<Vec<Entry>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(PART_SUFFIX) || name.ends_with(STATE_SUFFIX) {
            continue;
        }
        let md = e.metadata()?;
        let kind = if md.is_file() {
            "file"
        } else if md.is_dir() {
            "dir"
        } else {
            "other"
        };
        out.push(Entry {
            name,
            kind: kind.into(),
            size: if md.is_file() { md.len() } else { 0 },
            mtime: md.mtime(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
