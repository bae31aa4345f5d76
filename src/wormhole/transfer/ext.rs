//! taojie's extension between two taojie peers, agreed in the version phase (our
//! `app_versions` names [`ABILITY`]; a wormhole peer never sees any of this): several files
//! and directories under one code, streamed entry by entry through transit (no zip, constant
//! memory, modes and times kept), and resume — for each file the receiver says how much it
//! already holds and the SHA-256 of that prefix, and the sender sends only the rest when its
//! own prefix matches. Its records are sealed with ChaCha20-Poly1305 (see
//! [`Suite`](super::super::transit::Suite)).
//!
//! Over transit, after the sender's `go`, as sealed records (JSON unless noted):
//! sender `{"entry": {path, kind: "dir"|"file", size, mode, mtime}}`; for a file the receiver
//! answers `{"have": N, "sha256": HEX|null}`, the sender `{"from": N}`, then `size - from` bytes
//! of data records and `{"sha256": HEX}` of the whole file. At the end the sender sends
//! `{"done": true}` and the receiver acks `{"ack": "ok", "files": N, "bytes": N}`.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::messages::hex;
use super::super::transit::Connection;
use super::offer::{ABILITY, MAX_NAMES, Offer, human};
use super::progress::Progress;
use super::stream;

/// Our `app_versions`.
pub fn our_versions() -> Value {
    json!({ "taojie": { "abilities": [ABILITY] } })
}

/// Whether the peer's `app_versions` name [`ABILITY`].
pub fn peer_has(app_versions: &Value) -> bool {
    app_versions["taojie"]["abilities"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(ABILITY)))
}

/// What the sender will stream: the roots and their totals (walked once to count).
pub struct Manifest {
    roots: Vec<(PathBuf, String)>,
    files: u64,
    bytes: u64,
}

impl Manifest {
    /// Counts the files and bytes beneath `paths`; two roots with one name are refused.
    pub fn scan(paths: &[PathBuf]) -> Result<Manifest> {
        let mut m = Manifest {
            roots: Vec::new(),
            files: 0,
            bytes: 0,
        };
        if paths.len() > MAX_NAMES {
            bail!("at most {MAX_NAMES} paths in one send");
        }
        for p in paths {
            let name = p
                .canonicalize()?
                .file_name()
                .ok_or_else(|| anyhow!("cannot send {}: it has no name", p.display()))?
                .to_string_lossy()
                .into_owned();
            if m.roots.iter().any(|(_, n)| *n == name) {
                bail!("two of the paths are named {name:?}");
            }
            walk(p, &name, &mut |_, meta| {
                if meta.is_file() {
                    m.files += 1;
                    m.bytes += meta.len();
                }
                Ok(())
            })?;
            m.roots.push((p.clone(), name));
        }
        Ok(m)
    }

    /// The offer describing it.
    pub fn offer(&self) -> Offer {
        Offer::Entries {
            names: self.roots.iter().map(|(_, n)| n.clone()).collect(),
            files: self.files,
            bytes: self.bytes,
        }
    }
}

/// Visits `path` and everything beneath it (directories before their contents, names sorted),
/// calling `f` with the relative name and metadata; symlinks and special files are skipped
/// with a note.
fn walk(
    path: &std::path::Path,
    rel: &str,
    f: &mut dyn FnMut(&str, &std::fs::Metadata) -> Result<()>,
) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        f(rel, &meta)?;
        let mut kids: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        kids.sort_by_key(|e| e.file_name());
        for k in kids {
            let name = k.file_name().to_string_lossy().into_owned();
            walk(&k.path(), &format!("{rel}/{name}"), f)?;
        }
    } else if meta.is_file() {
        f(rel, &meta)?;
    } else {
        eprintln!("skipping {} (not a file or directory)", path.display());
    }
    Ok(())
}

/// The modification time as (seconds, nanoseconds) since the epoch.
fn mtime_of(meta: &std::fs::Metadata) -> Value {
    let t = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default();
    json!([t.as_secs(), t.subsec_nanos()])
}

/// The time an entry's `mtime` names, if it does.
pub fn mtime_from(v: &Value) -> Option<SystemTime> {
    let secs = v.get(0)?.as_u64()?;
    let nanos = u32::try_from(v.get(1)?.as_u64()?)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Sends JSON as one record.
pub async fn send_json(conn: &mut Connection, v: &Value) -> Result<()> {
    conn.writer.send(v.to_string().as_bytes()).await
}

/// Reads one record as a JSON object.
pub async fn recv_json(conn: &mut Connection) -> Result<Value> {
    let r = conn.reader.recv().await?;
    let v: Value = serde_json::from_slice(&r).context("the peer sent a record that is not JSON")?;
    if !v.is_object() {
        bail!("the peer sent a record that is not a JSON object");
    }
    Ok(v)
}

/// SHA-256 of the first `n` bytes of `file`, and the hasher holding them.
pub fn hash_prefix(file: &mut File, n: u64) -> Result<(Sha256, [u8; 32])> {
    file.seek(SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])
            .with_context(|| format!("the file is shorter than {n} bytes"))?;
        h.update(&buf[..want]);
        left -= want as u64;
    }
    let digest = h.clone().finalize().into();
    Ok((h, digest))
}

/// Streams every entry of `m`, resuming each file where the receiver holds a matching
/// prefix, then waits for the receiver's ack.
pub async fn send_entries(m: Manifest, mut conn: Connection, show: bool) -> Result<()> {
    let progress = Progress::new(m.bytes, "sending", show);
    let (mut files, mut skipped) = (0u64, 0u64);
    for (root, name) in &m.roots {
        // Walk into a list per root: names only, the data is read one file at a time.
        let mut entries = Vec::new();
        walk(root, name, &mut |rel, meta| {
            entries.push((rel.to_string(), meta.is_dir()));
            Ok(())
        })?;
        for (rel, is_dir) in entries {
            let path = match rel.split_once('/') {
                Some((_, rest)) => root.join(rest),
                None => root.clone(),
            };
            let meta = std::fs::symlink_metadata(&path)?;
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if is_dir {
                send_json(
                    &mut conn,
                    &json!({"entry": {"path": rel, "kind": "dir", "mode": mode}}),
                )
                .await?;
                continue;
            }
            let mut file =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let size = file.metadata()?.len();
            let entry = json!({"entry": {"path": rel, "kind": "file", "size": size, "mode": mode,
                "mtime": mtime_of(&meta)}});
            send_json(&mut conn, &entry).await?;
            let have = recv_json(&mut conn).await?;
            let held = have["have"].as_u64().unwrap_or(0);
            let mut from = 0;
            let mut hasher = Sha256::new();
            if held > 0 && held <= size {
                let (f2, held2) = (file.try_clone()?, held);
                let (h, digest) = tokio::task::spawn_blocking(move || {
                    let mut f2 = f2;
                    hash_prefix(&mut f2, held2)
                })
                .await??;
                if have["sha256"].as_str() == Some(&hex(&digest)) {
                    from = held;
                    hasher = h;
                }
            }
            send_json(&mut conn, &json!({ "from": from })).await?;
            file.seek(SeekFrom::Start(from))?;
            progress.inc(from);
            skipped += from;
            let sha = stream::send_file(
                file,
                size - from,
                stream::CHUNK,
                &mut conn.writer,
                &progress,
                hasher,
            )
            .await?;
            send_json(&mut conn, &json!({ "sha256": hex(&sha) })).await?;
            files += 1;
        }
    }
    send_json(&mut conn, &json!({"done": true})).await?;
    let ack = recv_json(&mut conn)
        .await
        .context("the receiver closed the connection before confirming")?;
    progress.finish();
    if ack["ack"].as_str() != Some("ok") {
        bail!("the transfer failed (the receiver says {ack})");
    }
    let _ = conn.writer.shutdown().await;
    eprintln!(
        "Sent {files} files: {} on the wire, {} already held by the receiver. Transfer complete.",
        human(conn.writer.wire_bytes),
        human(skipped)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abilities_are_recognised() {
        assert!(peer_has(&our_versions()));
        assert!(!peer_has(&json!({})));
        assert!(!peer_has(&json!({"taojie": {"abilities": "x"}})));
    }

    #[test]
    fn mtimes_round_trip_and_junk_is_none() {
        let t = mtime_from(&json!([1_700_000_000u64, 5])).unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
            5
        );
        assert!(mtime_from(&json!([1, 2_000_000_000u64])).is_none());
        assert!(mtime_from(&json!("x")).is_none());
    }
}
