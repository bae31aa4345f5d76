//! The clients: `taojie put`, `taojie get`, `taojie ls`. `put` and `get` reconnect and
//! resume after a broken connection (see [`retry`](super::retry)).
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use tokio::net::TcpStream;

use super::link::Link;
use super::names::{self, escape};
use super::partial::{BUSY, NoSpace, Partial};
use super::progress::{FileReport, Report, human};
use super::protocol::{FileHeader, Msg};
use super::receive::{self, Outcome};
use super::retry::{Retrier, RetryOpts};
use super::send::{self, Sent};
use super::stall::{Stall, secs};
use super::{GetArgs, LsArgs, PutArgs, SERVICE};
use crate::framing::{Transport, hello};
use crate::secure::flags::NoKey;
use crate::secure::{self, SecureStream};

/// A files connection as the clients hold it: framed, encrypted, watched for stalls.
pub type Conn = Link<SecureStream<Stall<TcpStream>>>;

/// Connects, runs the handshake (with `key`, or `identity`, else taojie's own key if there is
/// one, else none) and says hello for the files service. The connection fails once no byte
/// has moved for `stall`, connecting included.
pub async fn connect(
    addr: &str,
    key: Option<&Path>,
    identity: Option<&Path>,
    stall: Duration,
) -> Result<Conn> {
    let auth = secure::flags::client_auth(key, identity, NoKey::DefaultOrNone, addr)?;
    let sa = crate::addr::resolve_one(addr).await?;
    let stream = match tokio::time::timeout(stall, TcpStream::connect(sa)).await {
        Ok(connected) => connected,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out: no answer in {} s", secs(stall)),
        )),
    }
    .with_context(|| format!("cannot connect to {sa}"))?;
    stream.set_nodelay(true)?;
    crate::sys::keepalive(&stream, crate::sys::CLIENT_KEEPALIVE);
    let stream = secure::connect(Stall::new(stream, stall), &auth)
        .await
        .with_context(|| format!("{sa}"))?;
    let mut t = Transport::new(stream);
    hello::client(&mut t, SERVICE).await?;
    Ok(Link::new(t))
}

/// Connects with the flags of `put` and `get`.
async fn connect_with(addr: &str, opts: &super::ClientOpts) -> Result<Conn> {
    let stall = opts.retry.stall();
    connect(addr, opts.key.as_deref(), opts.identity.as_deref(), stall).await
}

/// `taojie put`: uploads files and trees.
pub async fn put(args: PutArgs) -> Result<ExitCode> {
    let prefix = match args.to.as_deref().map(|d| d.trim_matches('/')) {
        None | Some("") | Some(".") => None,
        Some(d) => Some(names::validate(d).with_context(|| format!("--to {}", escape(d)))?),
    };
    let mut files = Vec::new();
    for path in &args.files {
        let top = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .with_context(|| {
                format!(
                    "{}: no such file, or a name that is not UTF-8",
                    path.display()
                )
            })?;
        for (p, rel) in
            super::server::collect(path, &top).with_context(|| path.display().to_string())?
        {
            let name = match &prefix {
                Some(d) => format!("{}/{rel}", d.as_str()),
                None => rel,
            };
            names::validate(&name).with_context(|| format!("cannot send {}", escape(&name)))?;
            files.push((p, name));
        }
    }
    let mut report = Report::new("put", &args.opts);
    let mut retrier = Retrier::new(&args.addr, &args.opts.retry);
    let mut conn: Option<Conn> = None;
    let mut i = 0;
    while let Some((path, name)) = files.get(i) {
        let header = match send::header_for(path, name.clone()) {
            Ok(h) => h,
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
            Ok(()) => send::send(t, path, &header, &bar).await,
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
    Ok(report.finish())
}

fn failed(name: &str, size: u64, status: &'static str, message: String) -> FileReport {
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
fn no_space(whose: &str, name: &str, size: u64, full: &NoSpace, again: &str) -> FileReport {
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

/// `taojie get`: downloads files and trees into the output directory.
pub async fn get(args: GetArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let out: PathBuf = args.output.canonicalize()?;
    let mut report = Report::new("get", &args.opts);
    let mut retrier = Retrier::new(&args.addr, &args.opts.retry);
    let mut seen = Seen::default();
    loop {
        let mut t = match connect_with(&args.addr, &args.opts).await {
            Ok(t) => t,
            Err(e) => {
                retrier.again(e, None).await?;
                continue;
            }
        };
        retrier.connected();
        let mut under_way = None;
        let res = get_all(
            &mut t,
            &args,
            &out,
            &mut report,
            &mut seen,
            &mut retrier,
            &mut under_way,
        )
        .await;
        match res {
            Ok(()) => {
                let _ = t.close().await;
                return Ok(report.finish());
            }
            Err(e) => {
                drop(t);
                let at = under_way
                    .as_ref()
                    .map(|(n, b, s): &(String, ProgressBar, u64)| (n.as_str(), b.position(), *s));
                retrier.again(e, at).await?;
            }
        }
    }
}

/// What earlier attempts of one `get` already reported, so that a retry, which asks for the
/// same names again, neither fetches nor reports anything twice.
#[derive(Default)]
struct Seen {
    files: HashSet<String>,
    errors: HashSet<String>,
}

/// One attempt of `get`: asks for every name and takes what comes, skipping what an earlier
/// attempt finished. `under_way` holds the file being received, for the retry line.
async fn get_all(
    t: &mut Conn,
    args: &GetArgs,
    out: &Path,
    report: &mut Report,
    seen: &mut Seen,
    retrier: &mut Retrier<'_>,
    under_way: &mut Option<(String, ProgressBar, u64)>,
) -> Result<()> {
    t.send_control(&Msg::Get {
        names: args.names.clone(),
    })
    .await?;
    loop {
        match t.recv_control::<Msg>().await? {
            Msg::File { header } if seen.files.contains(&header.name) => {
                let message = "already received".to_string();
                t.send_control(&Msg::Refuse { message }).await?;
            }
            Msg::File { header } => {
                let bar = report.bar(&header.name, header.size);
                *under_way = Some((header.name.clone(), bar.clone(), header.size));
                let outcome = get_one(t, out, &header, args.overwrite, &bar).await;
                bar.finish_and_clear();
                let outcome = outcome?;
                *under_way = None;
                retrier.progressed();
                seen.files.insert(header.name.clone());
                report.record(outcome);
            }
            Msg::Error { message } => {
                if seen.errors.insert(message.clone()) {
                    report.record(failed("", 0, "refused", message));
                }
            }
            Msg::End => return Ok(()),
            other => bail!("protocol error: unexpected {other:?}"),
        }
    }
}

/// Receives one offered file, checking its name as strictly as the server checks ours.
async fn get_one(
    t: &mut Conn,
    out: &Path,
    header: &FileHeader,
    overwrite: bool,
    bar: &ProgressBar,
) -> Result<FileReport> {
    let whose = format!("{} has", out.display());
    let again = "get it again to resume when there is room";
    let refuse = |message: String| Msg::Refuse { message };
    let opened = names::validate(&header.name)
        .map_err(|e| refuse(format!("server sent a bad name: {e}")))
        .and_then(|n| {
            let dir = names::parent_dir(out, &n, true).map_err(|e| refuse(e.to_string()))?;
            Partial::open(&dir, n.file_name(), header, overwrite).map_err(|e| {
                match NoSpace::of(&e) {
                    Some(full) => Msg::NoSpace {
                        detail: full.detail.clone(),
                        kept: full.kept,
                    },
                    None => refuse(e.to_string()),
                }
            })
        });
    let partial = match opened {
        Ok(p) => p,
        Err(answer) => {
            t.send_control(&answer).await?;
            return Ok(match answer {
                Msg::NoSpace { detail, kept } => {
                    let full = NoSpace { detail, kept };
                    no_space(&whose, &header.name, header.size, &full, again)
                }
                Msg::Refuse { message } | Msg::Error { message } | Msg::Failed { message } => {
                    failed(&header.name, header.size, "refused", message)
                }
                other => failed(&header.name, header.size, "refused", format!("{other:?}")),
            });
        }
    };
    let resumed_from = partial.offset;
    let outcome = receive::receive(t, partial, bar).await;
    Ok(match outcome? {
        Outcome::Verified { blake3, received } => FileReport {
            name: header.name.clone(),
            size: header.size,
            status: "verified",
            blake3: Some(blake3),
            wire_bytes: received,
            resumed_from,
            message: None,
        },
        Outcome::Failed(m) => failed(&header.name, header.size, "failed", m),
        Outcome::NoSpace(full) => no_space(&whose, &header.name, header.size, &full, again),
    })
}

/// `taojie ls`: one line per entry (kind, size, time, name), or JSON.
pub async fn ls(args: LsArgs) -> Result<ExitCode> {
    let stall = RetryOpts::default().stall();
    let mut t = connect(
        &args.addr,
        args.key.as_deref(),
        args.identity.as_deref(),
        stall,
    )
    .await?;
    t.send_control(&Msg::Ls {
        dir: args.dir.clone(),
    })
    .await?;
    let mut all = Vec::new();
    loop {
        match t.recv_control::<Msg>().await? {
            Msg::Entries { entries } => all.extend(entries),
            Msg::End => break,
            Msg::Error { message } => bail!("{}", escape(&message)),
            other => bail!("protocol error: unexpected {other:?}"),
        }
    }
    let _ = t.close().await;
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
            println!(
                "{:<4} {size:>11}  {when}  {}{slash}",
                e.kind,
                escape(&e.name)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
