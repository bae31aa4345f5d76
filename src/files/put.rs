//! `taojie put`: the files and trees named on the command line, each file offered and sent
//! (or found up to date), each empty directory made; reconnecting and resuming after a
//! broken connection (see [`retry`](super::retry)), and on Ctrl-C stopping with the
//! verified part kept on the server (see [`interrupt`](super::interrupt)).
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::PutOptions;
use super::client::{Conn, connect_with, failed, no_space};
use super::interrupt::{Interrupt, UnderWay, left_line};
use super::names::{self, RelName, escape};
use super::partial::BUSY;
use super::progress::{FileReport, Report};
use super::protocol::Msg;
use super::retry::Retrier;
use super::send::{self, Sent};
use super::store::Root;

/// What goes to the server: a file, or an empty directory (which no file's path makes).
enum Upload {
    File(Local, String),
    Dir(String),
}

impl Upload {
    fn name(&self) -> &str {
        match self {
            Upload::File(_, name) | Upload::Dir(name) => name,
        }
    }
}

/// `taojie put`: uploads files and trees.
pub async fn put(args: PutOptions) -> Result<ExitCode> {
    let stop = Interrupt::watch()?;
    let prefix = match args.to.as_deref().map(|d| d.trim_matches('/')) {
        None | Some("") | Some(".") => None,
        Some(d) => Some(names::validate(d).with_context(|| format!("--to {}", escape(d)))?),
    };
    let mut uploads = Vec::new();
    for path in &args.files {
        for up in local_uploads(path).with_context(|| path.display().to_string())? {
            let up = match &prefix {
                Some(d) => match up {
                    Upload::File(l, rel) => Upload::File(l, format!("{}/{rel}", d.as_str())),
                    Upload::Dir(rel) => Upload::Dir(format!("{}/{rel}", d.as_str())),
                },
                None => up,
            };
            let name = up.name();
            names::validate(name).with_context(|| format!("cannot send {}", escape(name)))?;
            uploads.push(up);
        }
    }
    let mut report = Report::new("put", &args.opts);
    let mut retrier = Retrier::new(&args.addr, &args.opts.retry);
    let mut conn: Option<Conn> = None;
    let mut i = 0;
    let stopped = |report: Report, under_way: Option<UnderWay>| {
        let line = left_line(&stop, "put", report.done(), under_way, "the server keeps");
        report.interrupted(&line, stop.exit_code())
    };
    while let Some(up) = uploads.get(i) {
        if stop.is_set() {
            return Ok(stopped(report, None));
        }
        let t = match conn.as_mut() {
            Some(t) => t,
            None => match stop.or(connect_with(&args.addr, &args.opts)).await {
                None => continue,
                Some(Ok(t)) => {
                    retrier.connected();
                    conn.insert(t)
                }
                Some(Err(e)) => {
                    stop.or(retrier.again(e, None)).await.transpose()?;
                    continue;
                }
            },
        };
        let (local, name) = match up {
            Upload::File(local, name) => (local, name),
            Upload::Dir(name) => {
                match put_dir(t, name).await {
                    Ok(Ok(())) => report.dir_made(name),
                    Ok(Err(message)) => report.record(failed(name, 0, "refused", message)),
                    Err(e) => {
                        conn = None;
                        stop.or(retrier.again(e, None)).await.transpose()?;
                        continue;
                    }
                }
                retrier.progressed();
                i += 1;
                continue;
            }
        };
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
        let bar = report.bar(name, header.size);
        let offer = Msg::PutFile {
            header: header.clone(),
            overwrite: args.overwrite,
            fresh: args.no_resume,
        };
        let sent = match t.send_control(&offer).await {
            Ok(()) => send::send(t, file, &header, &bar, stop.token()).await,
            Err(e) => Err(e.into()),
        };
        bar.finish_and_clear();
        let sent = match sent {
            Ok(sent) => sent,
            Err(e) => {
                conn = None;
                let at = Some((name.as_str(), bar.position(), header.size));
                stop.or(retrier.again(e, at)).await.transpose()?;
                continue;
            }
        };
        if let Sent::Refused(m) = &sent
            && m.ends_with(BUSY)
            && retrier.used() > 0
        {
            // The server's side of the connection that broke still holds the file.
            let at = Some((name.as_str(), 0, header.size));
            let wait = retrier.wait("left the file held on the server", at);
            stop.or(wait).await.transpose()?;
            continue;
        }
        if let Sent::Stopped(kept) = sent {
            if let Some(mut t) = conn.take() {
                let _ = t.close().await;
            }
            let size = header.size;
            let name = name.clone();
            return Ok(stopped(report, Some(UnderWay { name, size, kept })));
        }
        retrier.progressed();
        i += 1;
        report.record(sent_report(sent, name, header.size));
    }
    if let Some(mut t) = conn {
        let _ = t.close().await;
    }
    report.retried(retrier.total());
    Ok(report.finish())
}

/// How a file's offer ended, as the report has it.
fn sent_report(sent: Sent, name: &str, size: u64) -> FileReport {
    let done = |status, blake3, sent: u64| FileReport {
        name: name.to_string(),
        size,
        status,
        blake3: Some(blake3),
        wire_bytes: sent,
        resumed_from: size - sent.min(size),
        message: None,
    };
    match sent {
        Sent::Verified { blake3, sent } => done("verified", blake3, sent),
        Sent::UpToDate { blake3 } => FileReport {
            resumed_from: 0,
            ..done("up_to_date", blake3, 0)
        },
        Sent::Refused(m) => failed(name, size, "refused", m),
        Sent::Failed(m) => failed(name, size, "failed", m),
        Sent::NoSpace(full) => {
            let again =
                "put it again to resume when there is room, or with --no-resume to remove it";
            no_space("the server has", name, size, &full, again)
        }
        Sent::Stopped(_) => failed(name, size, "failed", "stopped".into()),
    }
}

/// Asks the server to make the directory `name`: `Ok(Err(why))` when it refuses, `Err` when
/// the connection failed.
async fn put_dir(t: &mut Conn, name: &str) -> Result<Result<(), String>> {
    let name = name.to_string();
    t.send_control(&Msg::PutDir { name }).await?;
    Ok(match t.recv_control::<Msg>().await? {
        Msg::End => Ok(()),
        Msg::Refuse { message } | Msg::Error { message } => Err(message),
        other => bail!(
            "protocol error: unexpected {}",
            super::receive::kind(&other)
        ),
    })
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

/// What `path` names (itself, or the regular files and empty directories under it, links
/// skipped), each with the name it gets on the server: the path's own last name, then the
/// path below it.
fn local_uploads(path: &Path) -> Result<Vec<Upload>> {
    let md = match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match path.symlink_metadata() {
            Ok(_) => bail!("a link to nothing (its target does not exist)"),
            Err(_) => bail!("no such file or directory"),
        },
        other => other?,
    };
    let top = top_name(path)?;
    if md.is_file() {
        return Ok(vec![Upload::File(Local::File(path.to_path_buf()), top)]);
    }
    if !md.is_dir() {
        bail!("not a file or directory");
    }
    let root = Root::open(path)?;
    let tree = root.tree_under(None)?;
    if tree.files.is_empty() && tree.empty_dirs.is_empty() {
        return Ok(vec![Upload::Dir(top)]);
    }
    let dirs = tree
        .empty_dirs
        .into_iter()
        .map(|rel| Upload::Dir(format!("{top}/{}", rel.as_str())));
    let files = tree.files.into_iter().map(|rel| {
        let name = format!("{top}/{}", rel.as_str());
        Upload::File(Local::Under(root.clone(), rel), name)
    });
    Ok(dirs.chain(files).collect())
}

/// The name `path` is stored under: its own last component as given, so a link is stored
/// under the link's name and not its target's (as cp and scp do); only a path that ends in
/// `.` or `..` is resolved to find one.
fn top_name(path: &Path) -> Result<String> {
    let resolved;
    let last = match path.file_name() {
        Some(name) => name,
        None => {
            resolved = path.canonicalize()?;
            resolved
                .file_name()
                .context("the root directory has no name to store it under")?
        }
    };
    match last.to_str() {
        Some(name) => Ok(name.to_string()),
        None => bail!(
            "its name is not UTF-8 ({}): it cannot be named on the server; rename it",
            last.to_string_lossy()
        ),
    }
}
