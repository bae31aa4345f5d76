//! `taojie get`: one request for every name, each offered file received and checked; after a
//! broken connection, the same request again on a new one, skipping what already came and
//! resuming the file that was under way (see [`retry`](super::retry)).
//!
//! The server is not trusted with more than the bytes of what was asked for (the scp bug,
//! CVE-2019-6111): an offered name must be one the user asked for, or lie under one, and its
//! mode plain permission bits; anything else ends the transfer before a byte of it is
//! written. Files land beneath the output directory through [`store`](super::store), as a
//! server's uploads land beneath its root.
use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::GetOptions;
use super::client::{Conn, connect_with, failed, no_space};
use super::interrupt::{Interrupt, UnderWay, left_line};
use super::names::{self, RelName, escape};
use super::partial::{NoSpace, Partial};
use super::progress::{FileReport, Report};
use super::protocol::{FileHeader, Msg};
use super::receive::{self, Outcome};
use super::retry::Retrier;
use super::store::Root;
use crate::framing::native::kind_of;

/// `taojie get`: downloads files and trees into the output directory.
pub async fn get(args: GetOptions) -> Result<ExitCode> {
    let stop = Interrupt::watch()?;
    if std::fs::metadata(&args.output).is_ok_and(|m| !m.is_dir()) {
        bail!(
            "-o {}: that is a file; -o names the directory to download into",
            args.output.display()
        );
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let out = Root::open(&args.output).with_context(|| args.output.display().to_string())?;
    let mut report = Report::new("get", &args.opts);
    let mut retrier = Retrier::new(&args.addr, &args.opts.retry);
    let mut seen = Seen::default();
    let whose = format!("kept in {}:", args.output.display());
    loop {
        let mut t = match stop.or(connect_with(&args.addr, &args.opts)).await {
            None => {
                let line = left_line(&stop, "get", report.done(), None, &whose);
                return Ok(report.interrupted(&line, stop.exit_code()));
            }
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                stop.or(retrier.again(e, None)).await.transpose()?;
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
            &stop,
        )
        .await;
        match res {
            Ok(left) => {
                let _ = t.close().await;
                if stop.is_set() {
                    let line = left_line(&stop, "get", report.done(), left, &whose);
                    return Ok(report.interrupted(&line, stop.exit_code()));
                }
                report.retried(retrier.total());
                return Ok(report.finish());
            }
            Err(e) => {
                drop(t);
                let at = under_way
                    .as_ref()
                    .map(|(n, b, s): &(String, ProgressBar, u64)| (n.as_str(), b.position(), *s));
                stop.or(retrier.again(e, at)).await.transpose()?;
            }
        }
    }
}

/// Whether the server may send `header` for a request of `asked` (names as the user typed
/// them): its name must be the last part of one of them (what the server sends for a file)
/// or lie under it (for a directory), and its mode must hold no set-id or sticky bit. The
/// error names the offending file.
fn offer_allowed(asked: &[String], header: &FileHeader) -> Result<RelName, String> {
    let shown = escape(&header.name);
    let name = names::validate(&header.name)
        .map_err(|e| format!("the server sent a bad name {shown}: {e}"))?;
    if !wanted(asked, &name) {
        return Err(format!(
            "the server offered {shown}, which was not asked for"
        ));
    }
    if header.mode & !0o777 != 0 {
        return Err(format!(
            "the server offered {shown} with mode {:o} (set-id or sticky bits)",
            header.mode
        ));
    }
    Ok(name)
}

/// Whether `name` is the last part of a name in `asked` or lies under it.
fn wanted(asked: &[String], name: &RelName) -> bool {
    asked
        .iter()
        .filter_map(|a| names::validate(a).ok())
        .any(|a| {
            let top = a.file_name();
            name.as_str()
                .strip_prefix(top)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// What earlier attempts of one `get` already reported, so that a retry, which asks for the
/// same names again, neither fetches nor reports anything twice.
#[derive(Default)]
struct Seen {
    files: HashSet<String>,
    dirs: HashSet<String>,
    errors: HashSet<String>,
}

/// One attempt of `get`: asks for every name and takes what comes, skipping what an earlier
/// attempt finished. `under_way` holds the file being received, for the retry line. After a
/// stop, returns the file it caught under way, if any.
#[allow(clippy::too_many_arguments)]
async fn get_all(
    t: &mut Conn,
    args: &GetOptions,
    out: &Root,
    report: &mut Report,
    seen: &mut Seen,
    retrier: &mut Retrier<'_>,
    under_way: &mut Option<(String, ProgressBar, u64)>,
    stop: &Interrupt,
) -> Result<Option<UnderWay>> {
    t.send_control(&Msg::Get {
        names: args.names.clone(),
    })
    .await?;
    loop {
        let Some(next) = stop.or(t.recv_control::<Msg>()).await else {
            return Ok(None);
        };
        let header = match next? {
            Msg::File { header } => header,
            Msg::Dir { name } => {
                let made = make_dir(out, &args.names, &name);
                if seen.dirs.insert(name.clone()) {
                    match made {
                        Ok(()) => report.dir_made(&name),
                        Err(why) => report.record(failed(&name, 0, "failed", why)),
                    }
                }
                continue;
            }
            Msg::Error { message } => {
                if seen.errors.insert(message.clone()) {
                    report.record(failed("", 0, "refused", message));
                }
                continue;
            }
            Msg::End => return Ok(None),
            other => bail!("protocol error: unexpected {}", kind_of(&other)),
        };
        let name = match offer_allowed(&args.names, &header) {
            Ok(name) => name,
            Err(why) => {
                // One line, and the transfer ends here: a server that offers what was not
                // asked for is not asked for anything more.
                let message = why.clone();
                let _ = t.send_control(&Msg::Refuse { message }).await;
                bail!("{why}; transfer stopped, nothing of it written");
            }
        };
        if seen.files.contains(&header.name) {
            let message = "already received".to_string();
            t.send_control(&Msg::Refuse { message }).await?;
            continue;
        }
        let bar = report.bar(&header.name, header.size);
        *under_way = Some((header.name.clone(), bar.clone(), header.size));
        let outcome = get_one(t, out, &name, &header, args.overwrite, &bar, stop).await;
        bar.finish_and_clear();
        let outcome = match outcome? {
            Got::Report(r) => r,
            Got::Stopped { kept } => {
                return Ok(Some(UnderWay {
                    name: header.name,
                    size: header.size,
                    kept: Some(kept),
                }));
            }
        };
        *under_way = None;
        retrier.progressed();
        seen.files.insert(header.name.clone());
        report.record(outcome);
    }
}

/// Makes the empty directory `name` the server sent (if it lies under a name asked for)
/// beneath the output directory; the error says why not.
fn make_dir(out: &Root, asked: &[String], name: &str) -> Result<(), String> {
    let shown = escape(name);
    let rel = names::validate(name)
        .map_err(|e| format!("the server sent a bad directory name {shown}: {e}"))?;
    if !wanted(asked, &rel) {
        return Err(format!(
            "the server offered {shown}, which was not asked for"
        ));
    }
    out.make_dirs(&rel).map_err(|e| format!("{shown}: {e}"))
}

/// How receiving one file went: a line of the report, or stopped by a signal with `kept`
/// verified bytes kept beside it.
enum Got {
    Report(FileReport),
    Stopped { kept: u64 },
}

/// Receives one offered file (its name already allowed) beneath the output directory.
async fn get_one(
    t: &mut Conn,
    out: &Root,
    name: &RelName,
    header: &FileHeader,
    overwrite: bool,
    bar: &ProgressBar,
    stop: &Interrupt,
) -> Result<Got> {
    let whose = format!("{} has", out.path().display());
    let again = "get it again to resume when there is room";
    let (root, n, h) = (out.clone(), name.clone(), header.clone());
    // Directory lookups, statvfs, a possible lock wait and hashing a file already there stay
    // off the async workers.
    let opened = tokio::task::spawn_blocking(move || {
        Partial::open(&root, &n, &h, overwrite).map_err(|e| {
            let taken = e.kind() == std::io::ErrorKind::AlreadyExists && !overwrite;
            match NoSpace::of(&e) {
                Some(full) => Msg::NoSpace {
                    detail: full.detail.clone(),
                    kept: full.kept,
                },
                None => taken
                    .then(|| receive::have(&root, &n, &h))
                    .flatten()
                    .unwrap_or(Msg::Refuse {
                        message: e.to_string(),
                    }),
            }
        })
    })
    .await
    .unwrap_or_else(|e| {
        Err(Msg::Refuse {
            message: e.to_string(),
        })
    });
    let partial = match opened {
        Ok(p) => p,
        Err(answer) => {
            t.send_control(&answer).await?;
            let report = |status, message| failed(&header.name, header.size, status, message);
            return Ok(Got::Report(match answer {
                Msg::Have { blake3 } => match receive::same(t).await? {
                    true => FileReport {
                        name: header.name.clone(),
                        size: header.size,
                        status: "up_to_date",
                        blake3: Some(blake3),
                        wire_bytes: 0,
                        resumed_from: 0,
                        message: None,
                    },
                    false => report("refused", receive::exists_message(&header.name)),
                },
                Msg::NoSpace { detail, kept } => {
                    let full = NoSpace { detail, kept };
                    no_space(&whose, &header.name, header.size, &full, again)
                }
                Msg::Refuse { message } | Msg::Error { message } | Msg::Failed { message } => {
                    report("refused", message)
                }
                other => report("refused", kind_of(&other)),
            }));
        }
    };
    let resumed_from = partial.offset;
    let outcome = receive::receive(t, partial, bar, stop.token()).await;
    Ok(Got::Report(match outcome? {
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
        Outcome::Stopped { kept, .. } => return Ok(Got::Stopped { kept }),
    }))
}
