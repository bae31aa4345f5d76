//! The receiving end of taojie's entry stream (see [`super::ext`]): every path checked, each
//! top-level name built under a hidden staging name (`.NAME.taojie-part`, a file or a
//! directory) that takes the final name only when complete, each file verified against the
//! sender's SHA-256 before it counts. Staging is kept when a transfer breaks: the next run
//! with the same names resumes from it.
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::messages::hex;
use super::super::transit::Connection;
use super::ext::{hash_prefix, mtime_from, recv_json, send_json};
use super::offer::{MAX_SIZE, human};
use super::output::{check_rel_path, part_path, place};
use super::progress::Progress;
use super::{ReceiveOptions, stream};

/// The top-level name being received.
struct Top {
    name: String,
    /// The staging directory, for a directory (a file is placed as soon as it is verified).
    staging: Option<PathBuf>,
}

/// Counters for the closing line and the ack.
#[derive(Default)]
struct Tally {
    files: u64,
    bytes: u64,
    held: u64,
}

/// Receives the entry stream into `opts.out_dir`: only the offered top-level `names`, at most
/// `offered` bytes of files in all.
pub async fn receive_entries(
    mut conn: Connection,
    opts: &ReceiveOptions,
    names: &[String],
    offered: u64,
) -> Result<()> {
    let mut made = Vec::new();
    let res = receive_stream(&mut conn, opts, names, offered, &mut made).await;
    match res {
        Ok(tally) => {
            let ack = json!({"ack": "ok", "files": tally.files, "bytes": tally.bytes});
            send_json(&mut conn, &ack).await?;
            let _ = conn.writer.shutdown().await;
            eprintln!(
                "Received {} files ({}) into {}: {} on the wire, {} already held",
                tally.files,
                human(tally.bytes),
                opts.out_dir.display(),
                human(conn.reader.wire_bytes),
                human(tally.held)
            );
            Ok(())
        }
        Err(e) => {
            // A broken connection keeps the staging for the next run to resume; a refused
            // stream removes what this run made (our own directories: no symlink inside).
            if format!("{e:#}").contains("refused") {
                for dir in made {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Err(e)
        }
    }
}

async fn receive_stream(
    conn: &mut Connection,
    opts: &ReceiveOptions,
    names: &[String],
    offered: u64,
    made: &mut Vec<PathBuf>,
) -> Result<Tally> {
    let out = opts.out_dir.clone();
    let progress = Progress::new(offered, "receiving", opts.progress);
    let mut current: Option<Top> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut tally = Tally::default();
    loop {
        let v = recv_json(conn).await?;
        if v["done"] == Value::Bool(true) {
            finish(current.take(), &out)?;
            break;
        }
        let e = &v["entry"];
        let path = e["path"].as_str().unwrap_or_default();
        let parts = check_rel_path(path)?;
        let top = parts[0];
        if !names.iter().any(|n| n == top) {
            bail!("refused: the sender sent {path:?}, which it did not offer");
        }
        let is_dir = match e["kind"].as_str() {
            Some("dir") => true,
            Some("file") => false,
            _ => bail!("refused: the entry {path:?} is neither a file nor a directory"),
        };
        if current.as_ref().map(|t| t.name.as_str()) != Some(top) {
            finish(current.take(), &out)?;
            if !seen.insert(top.to_string()) {
                bail!("refused: the sender sent {top:?} twice");
            }
            if parts.len() > 1 {
                bail!("refused: the sender sent {path:?} before its directory");
            }
            let staging = if is_dir {
                Some(staging_dir(&out, top, made)?)
            } else {
                None
            };
            current = Some(Top {
                name: top.to_string(),
                staging,
            });
        }
        let top_entry = current.as_ref().expect("set above");
        let mode = e["mode"].as_u64().map(|m| m as u32 & 0o777);
        if is_dir {
            if let Some(staging) = &top_entry.staging {
                let dir = descend(staging, &parts[1..])?;
                if let Some(m) = mode {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m | 0o700))?;
                }
            }
            continue;
        }
        let size = match e["size"].as_u64() {
            Some(s) if s <= MAX_SIZE => s,
            _ => bail!("refused: the entry {path:?} has no size"),
        };
        tally.bytes = tally.bytes.saturating_add(size);
        if tally.bytes > offered {
            bail!(
                "refused: the sender sends more than the {} it offered",
                human(offered)
            );
        }
        let (dir, name, top_level) = match &top_entry.staging {
            None => (out.clone(), top, true),
            Some(staging) if parts.len() > 1 => (
                descend(staging, &parts[1..parts.len() - 1])?,
                parts[parts.len() - 1],
                false,
            ),
            Some(_) => bail!("refused: {path:?} is both a directory and a file"),
        };
        let spec = FileSpec {
            dir: &dir,
            name,
            size,
            mode,
            mtime: mtime_from(&e["mtime"]),
        };
        let held = receive_one(
            conn,
            &spec,
            top_level && opts.overwrite,
            top_level,
            &progress,
        )
        .await
        .with_context(|| format!("receiving {path}"))?;
        tally.held += held;
        tally.files += 1;
    }
    progress.finish();
    Ok(tally)
}

/// The hidden staging directory of top-level directory `name`, made (and noted in `made`)
/// or, from an earlier broken run, reused; it must be a real directory.
fn staging_dir(out: &Path, name: &str, made: &mut Vec<PathBuf>) -> Result<PathBuf> {
    let staging = part_path(out, name);
    match std::fs::symlink_metadata(&staging) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("{} is in the way (not a directory)", staging.display()),
        Err(_) => {
            std::fs::create_dir(&staging)
                .with_context(|| format!("cannot create {}", staging.display()))?;
            made.push(staging.clone());
        }
    }
    Ok(staging)
}

/// `base/parts...`, each level a real directory, made if missing.
fn descend(base: &Path, parts: &[&str]) -> Result<PathBuf> {
    let mut dir = base.to_path_buf();
    for p in parts {
        dir.push(p);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("refused: {} is a file, not a directory", dir.display()),
            Err(_) => std::fs::create_dir(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?,
        }
    }
    Ok(dir)
}

/// Gives a finished top-level directory its final name.
fn finish(top: Option<Top>, out: &Path) -> Result<()> {
    if let Some(Top {
        name,
        staging: Some(staging),
    }) = top
    {
        place(&staging, &out.join(&name), false)?;
    }
    Ok(())
}

/// One file to receive.
struct FileSpec<'a> {
    dir: &'a Path,
    name: &'a str,
    size: u64,
    mode: Option<u32>,
    mtime: Option<std::time::SystemTime>,
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Receives one file, resuming from what its part file (or, inside a staging directory, its
/// already complete final file) holds; returns the bytes that were already held.
async fn receive_one(
    conn: &mut Connection,
    spec: &FileSpec<'_>,
    overwrite: bool,
    top_level: bool,
    progress: &Progress,
) -> Result<u64> {
    let final_path = spec.dir.join(spec.name);
    let part = part_path(spec.dir, spec.name);
    // Inside our own staging directory, a complete file from an earlier run counts as held.
    let done_before = !top_level
        && std::fs::symlink_metadata(&final_path)
            .is_ok_and(|m| m.is_file() && m.len() == spec.size);
    let path = if done_before {
        final_path.clone()
    } else {
        part.clone()
    };
    let mut file = open_rw(&path)?;
    let mut held = file.metadata()?.len();
    if held > spec.size {
        file.set_len(0)?;
        held = 0;
    }
    let (mut hasher, digest) = if held > 0 {
        let mut f2 = file.try_clone()?;
        let (h, d) = tokio::task::spawn_blocking(move || hash_prefix(&mut f2, held)).await??;
        (h, Some(hex(&d)))
    } else {
        (Sha256::new(), None)
    };
    send_json(conn, &json!({"have": held, "sha256": digest})).await?;
    let from = recv_json(conn).await?["from"].as_u64();
    let from = match from {
        Some(0) => {
            hasher = Sha256::new();
            0
        }
        Some(f) if f == held => f,
        _ => bail!("refused: the sender's resume point is not one we offered"),
    };
    file.set_len(from)?;
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(from))?;
    progress.inc(from);
    let (file, sha) =
        stream::recv_file(file, spec.size - from, &mut conn.reader, progress, hasher).await?;
    let theirs = recv_json(conn).await?;
    if theirs["sha256"].as_str() != Some(&hex(&sha)) {
        let _ = std::fs::remove_file(&path);
        bail!("the file arrived different from the sender's (SHA-256 mismatch); removed it");
    }
    if let Some(m) = spec.mode {
        file.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    if let Some(t) = spec.mtime {
        let _ = file.set_modified(t);
    }
    file.sync_all()?;
    drop(file);
    if !done_before {
        place(&part, &final_path, overwrite)?;
    }
    Ok(from)
}
