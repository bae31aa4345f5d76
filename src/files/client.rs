//! The clients' connection, `taojie put` and `taojie ls` (`get` is in
//! [`download`](super::download)). `put` reconnects and resumes after a broken connection
//! (see [`retry`](super::retry)).
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::TcpStream;

use super::link::Link;
use super::names::{self, RelName, escape};
use super::partial::{BUSY, NoSpace};
use super::progress::{FileReport, Report, human};
use super::protocol::Msg;
use super::retry::{Retrier, RetryOpts};
use super::send::{self, Sent};
use super::stall::Stall;
use super::store::Root;
use super::{LsOptions, PutOptions, SERVICE};
use crate::framing::native::kind_of;
use crate::framing::{FramedStream, hello};
use crate::proxy_wire::ProxyUrl;
use crate::secure;
use crate::secure::flags::NoKey;

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
    let stream = secure::connect(Stall::new(stream, stall), &auth)
        .await
        .with_context(|| sa.clone())?;
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

/// `taojie put`: uploads files and trees.
pub async fn put(args: PutOptions) -> Result<ExitCode> {
    let prefix = match args.to.as_deref().map(|d| d.trim_matches('/')) {
        None | Some("") | Some(".") => None,
        Some(d) => Some(names::validate(d).with_context(|| format!("--to {}", escape(d)))?),
    };
    let mut files = Vec::new();
    for path in &args.files {
        for (local, rel) in local_files(path).with_context(|| path.display().to_string())? {
            let name = match &prefix {
                Some(d) => format!("{}/{rel}", d.as_str()),
                None => rel,
            };
            names::validate(&name).with_context(|| format!("cannot send {}", escape(&name)))?;
            files.push((local, name));
        }
    }
    let mut report = Report::new("put", &args.opts);
    let mut retrier = Retrier::new(&args.addr, &args.opts.retry);
    let mut conn: Option<Conn> = None;
    let mut i = 0;
    while let Some((local, name)) = files.get(i) {
        let opened = local
            .open()
            .and_then(|f| send::header_for(&f, name.clone()).map(|h| (f, h)));
        let (file, header) = match opened {
            Ok(fh) => fh,
            Err(e) => {
                report.record(failed(name, 0, "failed", e.to_string()));
                i += 1;
                continue;
            }
        };
        let t = match conn.as_mut() {
            Some(t) => t,
            None => match connect_with(&args.addr, &args.opts).await {
                Ok(t) => {
                    retrier.connected();
                    conn.insert(t)
                }
                Err(e) => {
                    retrier.again(e, None).await?;
                    continue;
                }
            },
        };
        let bar = report.bar(name, header.size);
        let offer = Msg::PutFile {
            header: header.clone(),
            overwrite: args.overwrite,
            fresh: args.no_resume,
        };
        let sent = match t.send_control(&offer).await {
            Ok(()) => send::send(t, file, &header, &bar).await,
            Err(e) => Err(e.into()),
        };
        bar.finish_and_clear();
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                conn = None;
                let at = Some((name.as_str(), bar.position(), header.size));
                retrier.again(e, at).await?;
                continue;
            }
        };
        if let Sent::Refused(m) = &sent
            && m.ends_with(BUSY)
            && retrier.used() > 0
        {
            // The server's side of the connection that broke still holds the file.
            retrier
                .wait(
                    "left the file held on the server",
                    Some((name, 0, header.size)),
                )
                .await?;
            continue;
        }
        retrier.progressed();
        i += 1;
        report.record(match sent {
            Sent::Verified { blake3, sent } => FileReport {
                name: name.clone(),
                size: header.size,
                status: "verified",
                blake3: Some(blake3),
                wire_bytes: sent,
                resumed_from: header.size - sent,
                message: None,
            },
            Sent::Refused(m) => failed(name, header.size, "refused", m),
            Sent::Failed(m) => failed(name, header.size, "failed", m),
            Sent::NoSpace(full) => {
                let again =
                    "put it again to resume when there is room, or with --no-resume to remove it";
                no_space("the server has", name, header.size, &full, again)
            }
        });
    }
    if let Some(mut t) = conn {
        let _ = t.close().await;
    }
    report.retried(retrier.total());
    Ok(report.finish())
}

/// A local file to upload: one named on the command line, or one found under a directory
/// named there (walked, and opened, beneath that directory like a server's root).
enum Local {
    File(PathBuf),
    Under(Root, RelName),
}

impl Local {
    fn open(&self) -> io::Result<File> {
        match self {
            Local::File(path) => File::open(path),
            Local::Under(root, rel) => root.open_file(rel),
        }
    }
}

/// The files `path` names (itself, or the regular files under it, links skipped), each with
/// the name it gets on the server: the path's own last name, then the path below it.
fn local_files(path: &Path) -> Result<Vec<(Local, String)>> {
    let top = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .context("no such file, or a name that is not UTF-8")?;
    let md = std::fs::metadata(path)?;
    if md.is_file() {
        return Ok(vec![(Local::File(path.to_path_buf()), top)]);
    }
    if !md.is_dir() {
        bail!("not a file or directory");
    }
    let root = Root::open(path)?;
    let files = root.files_under(None)?;
    Ok(files
        .into_iter()
        .map(|rel| {
            let name = format!("{top}/{}", rel.as_str());
            (Local::Under(root.clone(), rel), name)
        })
        .collect())
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
