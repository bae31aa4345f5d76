//! `taojie get`: one request for every name, each offered file received and checked; after a
//! broken connection, the same request again on a new one, skipping what already came and
//! resuming the file that was under way (see [`retry`](super::retry)).
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::GetArgs;
use super::client::{Conn, connect_with, failed, no_space};
use super::names;
use super::partial::{NoSpace, Partial};
use super::progress::{FileReport, Report};
use super::protocol::{FileHeader, Msg};
use super::receive::{self, Outcome};
use super::retry::Retrier;

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
                report.retried(retrier.total());
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
