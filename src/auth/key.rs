//! Key files: the shared secret as bytes (one trailing newline is not part of it), created by
//! `taojie keygen` as 64 hex characters readable by their owner only.
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// A shared secret. Its `Debug` form never shows the bytes, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(MASKED)")
    }
}

impl Key {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key> {
        if bytes.is_empty() {
            bail!("the key is empty");
        }
        Ok(Key(bytes.to_vec()))
    }

    /// Reads a key file; one trailing newline is dropped. Warns when others may read it.
    pub fn load(path: &Path) -> Result<Key> {
        let mut bytes = std::fs::read(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "key file is readable by other users; chmod 600 it");
        }
        Key::from_bytes(&bytes).with_context(|| format!("key file {}", path.display()))
    }

    /// The secret's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Writes a new key file at `path`: 32 random bytes as 64 hex characters and a newline,
/// mode 0600. Refuses to overwrite anything already there.
pub fn generate(path: &Path) -> Result<()> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| match path.exists() {
            true => format!("{} already exists; not overwriting it", path.display()),
            false => format!("cannot create key file {}", path.display()),
        })?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Where `taojie serve` keeps its key: `$XDG_DATA_HOME/taojie/key`, else
/// `~/.local/share/taojie/key`.
pub fn default_path() -> Result<std::path::PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => std::path::PathBuf::from(home).join(".local/share"),
            None => bail!("neither XDG_DATA_HOME nor HOME is set; pass --key FILE"),
        },
    };
    Ok(base.join("taojie").join("key"))
}

/// Loads the key at `path`, first creating it (and its directory, mode 0700) if it does not
/// exist. Returns the key and whether it was created.
pub fn load_or_create(path: &Path) -> Result<(Key, bool)> {
    let created = if path.exists() {
        false
    } else {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        generate(path)?;
        true
    };
    Ok((Key::load(path)?, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_private_hex_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        generate(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text[..64].bytes().all(|b| b.is_ascii_hexdigit()) && text.ends_with('\n'));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = generate(&path).unwrap_err().to_string();
        assert!(err.contains("not overwriting"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(Key::load(&path).unwrap().bytes(), &text.as_bytes()[..64]);
        assert_eq!(format!("{:?}", Key::load(&path).unwrap()), "Key(MASKED)");
    }

    #[test]
    fn only_one_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"secret\n\n").unwrap();
        assert_eq!(Key::load(&path).unwrap().bytes(), b"secret\n");
        std::fs::write(&path, b"\n").unwrap();
        assert!(Key::load(&path).is_err());
    }
}
