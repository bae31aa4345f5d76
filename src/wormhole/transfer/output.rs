//! Where received bytes land: names from the peer checked before any use, a part file beside
//! the target (never followed through a symlink), then fsync and a rename that never replaces
//! what exists unless the user said `--overwrite`. Nothing appears under its final name until
//! it is complete and verified.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The longest name (in bytes) of one path component we create.
const MAX_NAME: usize = 255;

/// Checks that `name`, from the peer, is one plain file name: not empty, `.` or `..`, no
/// slash, backslash or control character, at most 255 bytes.
pub fn check_name(name: &str) -> Result<&str> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > MAX_NAME
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        bail!(
            "refused: the sender offered an unsafe name {:?} (a path, or characters no file name has)",
            name.chars().take(80).collect::<String>()
        );
    }
    Ok(name)
}

/// Checks a relative path from the peer (`a/b/c`, slashes only): every component a plain
/// name, so it can only name something beneath the directory it is joined to.
pub fn check_rel_path(path: &str) -> Result<Vec<&str>> {
    if path.starts_with('/') || path.len() > 4096 {
        bail!("refused: the sender offered an absolute or overlong path {path:?}");
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() {
        bail!("refused: the sender offered an empty path");
    }
    for p in &parts {
        check_name(p).with_context(|| format!("in {path:?}"))?;
    }
    Ok(parts)
}

/// The hidden name beside `target` that holds it while it arrives: `.NAME.taojie-part`.
pub fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.taojie-part"))
}

/// A file arriving under its part name.
pub struct PartFile {
    /// The open part file.
    pub file: File,
    part: PathBuf,
    target: PathBuf,
    overwrite: bool,
}

impl PartFile {
    /// Opens the part file for `name` in `dir` (kept as it is when `keep` asks to resume,
    /// else emptied). Fails at once if the target exists and `overwrite` is false.
    pub fn open(dir: &Path, name: &str, overwrite: bool, keep: bool) -> Result<PartFile> {
        let target = dir.join(check_name(name)?);
        if !overwrite && std::fs::symlink_metadata(&target).is_ok() {
            bail!(
                "refused: {} exists (use --overwrite to replace it)",
                target.display()
            );
        }
        let part = part_path(dir, name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!keep)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&part)
            .with_context(|| format!("cannot write {}", part.display()))?;
        Ok(PartFile {
            file,
            part,
            target,
            overwrite,
        })
    }

    /// Bytes already in the part file.
    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the part file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Where it will appear.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the bytes and gives the file its final name (and `mode`, if given).
    pub fn commit(self, mode: Option<u32>) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let mut file = self.file;
        file.flush()?;
        let mode = mode.map(|m| m & 0o777).unwrap_or(0o644);
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", self.part.display()))?;
        place(&self.part, &self.target, self.overwrite)?;
        Ok(self.target)
    }

    /// Removes the part file (an abandoned transfer that cannot be resumed).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

/// Renames `from` to `to`: never over an existing `to` unless `overwrite` (and then never over a
/// directory), and syncs the directory so the name survives a crash.
pub fn place(from: &Path, to: &Path, overwrite: bool) -> Result<()> {
    let res = if overwrite {
        if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
            bail!("refused: {} is a directory; not replacing it", to.display());
        }
        std::fs::rename(from, to)
    } else {
        crate::sys::rename_noreplace(from, to)
    };
    match res {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "refused: {} appeared meanwhile (use --overwrite to replace it)",
            to.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot rename to {}", to.display())),
    }
    if let Some(dir) = to.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_peer() {
        for ok in ["a.txt", "résumé", ".hidden", "a b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/etc/passwd",
            "..\\x",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_rel_path("a/b//c/").unwrap(), vec!["a", "b", "c"]);
        for bad in ["/abs", "../../x", "a/../b", "a/./b", "", "///"] {
            assert!(check_rel_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn part_file_never_replaces_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), b"old").unwrap();
        assert!(PartFile::open(dir.path(), "x", false, false).is_err());
        let mut p = PartFile::open(dir.path(), "y", false, false).unwrap();
        p.file.write_all(b"new").unwrap();
        // Something takes the name while the transfer runs: the rename refuses.
        std::fs::write(dir.path().join("y"), b"meanwhile").unwrap();
        assert!(p.commit(None).is_err());
        assert_eq!(std::fs::read(dir.path().join("y")).unwrap(), b"meanwhile");
        let mut p = PartFile::open(dir.path(), "x", true, false).unwrap();
        p.file.write_all(b"new").unwrap();
        p.commit(Some(0o4755)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"new");
    }

    #[test]
    fn part_file_is_not_followed_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, part_path(dir.path(), "f")).unwrap();
        assert!(PartFile::open(dir.path(), "f", false, false).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
