//! Directories as zip archives, the way wormhole file-transfer v1 sends them. Unpacking treats
//! the archive as hostile: every entry's path is checked component by component, symlink
//! entries are refused, each entry may not grow past its declared size and the whole past the
//! bytes the user accepted (zip bombs), and everything lands in a fresh directory of our own
//! that takes its final name only when all of it is written.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use zip::write::SimpleFileOptions;

use super::output::{check_rel_path, place};

/// The most entries an archive may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

/// What an unpack wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Unpacks `archive` into a new directory `dir/name`, writing at most `max_bytes` in all.
/// The directory is built as `dir/.name.taojie-part-RANDOM` and renamed at the end (never
/// over an existing `dir/name`); on any error it is removed.
pub fn unpack<R: Read + Seek>(
    archive: R,
    dir: &Path,
    name: &str,
    max_bytes: u64,
) -> Result<(PathBuf, Unpacked)> {
    let target = dir.join(super::output::check_name(name)?);
    if std::fs::symlink_metadata(&target).is_ok() {
        bail!(
            "refused: {} exists; not unpacking over it",
            target.display()
        );
    }
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).expect("the system's random source");
    let tmp = dir.join(format!(
        ".{name}.taojie-part-{}",
        super::super::messages::hex(&tag)
    ));
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let done = unpack_into(archive, &tmp, max_bytes).and_then(|u| {
        place(&tmp, &target, false)?;
        Ok(u)
    });
    match done {
        Ok(u) => Ok((target, u)),
        Err(e) => {
            // Our own fresh directory: it holds no symlink, so this removes nothing outside.
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn unpack_into<R: Read + Seek>(archive: R, root: &Path, max_bytes: u64) -> Result<Unpacked> {
    let mut zip =
        zip::ZipArchive::new(archive).context("refused: the archive is not a zip file")?;
    if zip.len() > MAX_ENTRIES {
        bail!(
            "refused: the archive has {} entries (at most {MAX_ENTRIES})",
            zip.len()
        );
    }
    let mut done = Unpacked::default();
    let mut buf = vec![0u8; 256 << 10];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).context("refused: a damaged zip entry")?;
        let name = entry
            .name()
            .context("refused: a zip entry's name")?
            .into_owned();
        let parts = check_rel_path(&name).with_context(|| "refused: an unsafe zip entry")?;
        // A symlink, or any file type but a plain file or directory, is refused.
        let kind = entry.unix_mode().unwrap_or(0) & 0o170000;
        if entry.is_symlink() || !matches!(kind, 0 | 0o100000 | 0o040000) {
            bail!("refused: the archive holds a symlink or special entry {name:?}");
        }
        let mut path = root.to_path_buf();
        for (n, p) in parts.iter().enumerate() {
            path.push(p);
            let last = n + 1 == parts.len();
            if last && !entry.is_dir() {
                break;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!("refused: {name:?} runs through a file of the archive"),
                Err(_) => std::fs::create_dir(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            }
        }
        if entry.is_dir() {
            continue;
        }
        let declared = entry.size();
        if done.bytes.saturating_add(declared) > max_bytes {
            bail!("refused: the archive unpacks to more than the {max_bytes} bytes offered");
        }
        let mode = entry.unix_mode().map(|m| m & 0o777).unwrap_or(0o644) | 0o600;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("refused: the archive names {name:?} twice"))?;
        let mut written = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .with_context(|| format!("refused: {name:?} is damaged"))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > declared {
                bail!("refused: {name:?} grows past the {declared} bytes it declares");
            }
            out.write_all(&buf[..n])?;
        }
        out.sync_all()?;
        out.set_permissions(std::fs::Permissions::from_mode(mode))?;
        done.files += 1;
        done.bytes += written;
    }
    Ok(done)
}

/// What a directory holds, as [`zip_dir`] packs it.
#[derive(Debug, Default)]
pub struct Packed {
    /// Bytes of the archive.
    pub zip_size: u64,
    /// Bytes of the files in it.
    pub bytes: u64,
    /// Files in it.
    pub files: u64,
}

/// Packs each of `roots` (a path and the name it has in the archive; `.` puts a directory's
/// contents at the top) into `out`, deflated; symlinks and special files are skipped with a
/// note on stderr.
pub fn zip_dir(roots: &[(PathBuf, String)], out: File) -> Result<(File, Packed)> {
    let mut zip = zip::ZipWriter::new(out);
    let mut packed = Packed::default();
    let mut stack: Vec<(PathBuf, String)> = roots.to_vec();
    while let Some((path, name)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(meta.permissions().mode() & 0o777);
        if meta.is_dir() {
            if name != "." {
                zip.add_directory(format!("{name}/"), opts)?;
            }
            let mut kids: Vec<_> = std::fs::read_dir(&path)?.collect::<Result<_, _>>()?;
            kids.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for k in kids {
                let kid = k.file_name().to_string_lossy().into_owned();
                let kname = if name == "." {
                    kid
                } else {
                    format!("{name}/{kid}")
                };
                stack.push((k.path(), kname));
            }
        } else if meta.is_file() {
            zip.start_file(
                name.as_str(),
                opts.large_file(meta.len() >= u32::MAX as u64),
            )?;
            let mut f = File::open(&path)?;
            packed.bytes += std::io::copy(&mut f, &mut zip)?;
            packed.files += 1;
        } else {
            eprintln!("skipping {} (not a file or directory)", path.display());
        }
    }
    let mut out = zip.finish()?;
    packed.zip_size = out.stream_position()?;
    out.rewind()?;
    Ok((out, packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8], Option<u32>)]) -> std::io::Cursor<Vec<u8>> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data, mode) in entries {
            let mut o = SimpleFileOptions::default();
            if let Some(m) = mode {
                o = o.unix_permissions(*m);
            }
            if *mode == Some(0o120777) {
                w.add_symlink(*name, std::str::from_utf8(data).unwrap(), o)
                    .unwrap();
                continue;
            }
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        let mut c = w.finish().unwrap();
        c.rewind().unwrap();
        c
    }

    #[test]
    fn a_packed_directory_unpacks_the_same() {
        let src = tempfile::tempdir().unwrap();
        let d = src.path().join("tree");
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/c.txt"), b"hello").unwrap();
        std::fs::write(d.join("top"), vec![7u8; 100_000]).unwrap();
        std::fs::create_dir(d.join("empty")).unwrap();
        let (f, p) = zip_dir(&[(d.clone(), "tree".into())], tempfile::tempfile().unwrap()).unwrap();
        assert_eq!((p.files, p.bytes), (2, 100_005));
        let out = tempfile::tempdir().unwrap();
        let (t, u) = unpack(f, out.path(), "got", p.bytes).unwrap();
        assert_eq!(
            u,
            Unpacked {
                files: 2,
                bytes: 100_005
            }
        );
        assert_eq!(std::fs::read(t.join("tree/a/b/c.txt")).unwrap(), b"hello");
        assert!(t.join("tree/empty").is_dir());
    }

    #[test]
    fn hostile_archives_leave_nothing_behind() {
        let cases: Vec<(std::io::Cursor<Vec<u8>>, u64, &str)> = vec![
            (zip_of(&[("../../x", b"evil", None)]), 100, "unsafe"),
            (zip_of(&[("/etc/x", b"evil", None)]), 100, "absolute"),
            (
                zip_of(&[("ok", b"fine", None), ("a/../../x", b"evil", None)]),
                100,
                "unsafe",
            ),
            (
                zip_of(&[("link", b"/etc/passwd", Some(0o120777))]),
                100,
                "symlink",
            ),
            (zip_of(&[("big", &[0u8; 5000], None)]), 1000, "more than"),
            (
                zip_of(&[("d", b"x", None), ("d/y", b"y", None)]),
                100,
                "runs through",
            ),
            (
                std::io::Cursor::new(b"not a zip".to_vec()),
                100,
                "not a zip",
            ),
        ];
        for (zip, max, why) in cases {
            let out = tempfile::tempdir().unwrap();
            let e = unpack(zip, out.path(), "got", max).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{why}: {e:#}");
            let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
            assert!(left.is_empty(), "{why}: {left:?}");
        }
    }
}
