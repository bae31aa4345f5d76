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

    /// Reads a key file; one trailing newline is dropped. Refuses what cannot be a shared key
    /// (see `check_key_file` below), so a wrong file is named at once rather than failing later
    /// as a wrong key. Warns when others may read it.
    pub fn load(path: &Path) -> Result<Key> {
        let shown = path.display();
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read key file {shown}"))?;
        if meta.len() > MAX_KEY_FILE {
            bail!(
                "{shown} is not a key file ({} bytes; a shared key is a line of 64 hex \
                 characters from `taojie keygen FILE`)",
                meta.len()
            );
        }
        let mut bytes =
            std::fs::read(path).with_context(|| format!("cannot read key file {shown}"))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        check_key_file(&bytes).map_err(|why| anyhow::anyhow!("key file {shown}: {why}"))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %shown, "key file is readable by other users; chmod 600 it");
        }
        Key::from_bytes(&bytes).with_context(|| format!("key file {shown}"))
    }

    /// The secret's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The fewest bytes a key file may hold: fewer is a word typed in or a paste cut short, not
/// a secret (`taojie keygen` writes 64).
pub const MIN_KEY: usize = 16;
/// The largest file read as a key: a key is a line; anything this big is some other file.
pub const MAX_KEY_FILE: u64 = 4096;

/// Why `bytes` (a key file's, its trailing newline dropped) cannot be a shared key: another
/// kind of key file given where the shared one belongs, or too few bytes to be a secret.
pub fn check_key_file(bytes: &[u8]) -> std::result::Result<(), String> {
    let starts = |tag: &str| bytes.starts_with(tag.as_bytes());
    if starts("taojie-x25519-private ") {
        return Err(
            "this is an identity key (`taojie keygen --identity`): give it with \
                    --identity, not --key"
                .into(),
        );
    }
    if starts("taojie-x25519 ") {
        return Err(
            "this is a public identity key (a .pub line): it belongs in a server's \
                    --authorized file, not after --key"
                .into(),
        );
    }
    if starts("-----BEGIN") {
        return Err(
            "this is a PEM file (a TLS key or certificate), not a shared key; make \
                    one with `taojie keygen FILE`"
                .into(),
        );
    }
    if bytes.is_empty() {
        return Err("the key is empty".into());
    }
    if bytes.len() < MIN_KEY {
        return Err(format!(
            "{} bytes is too short for a shared key (at least {MIN_KEY}; `taojie keygen FILE` \
             makes one)",
            bytes.len()
        ));
    }
    Ok(())
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
        .map_err(|e| create_error(e, path, "key file "))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The error for a new file at `path` that could not be made: one sentence when something is
/// already there (the OS's "File exists" would only repeat it), else the OS's reason after
/// "cannot create `what`PATH".
pub fn create_error(e: std::io::Error, path: &Path, what: &str) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow::anyhow!("{} already exists; not overwriting it", path.display())
        }
        _ => anyhow::Error::new(e).context(format!("cannot create {what}{}", path.display())),
    }
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
        let err = format!("{:#}", generate(&path).unwrap_err());
        assert!(err.ends_with("already exists; not overwriting it"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(Key::load(&path).unwrap().bytes(), &text.as_bytes()[..64]);
        assert_eq!(format!("{:?}", Key::load(&path).unwrap()), "Key(MASKED)");
    }

    #[test]
    fn files_that_cannot_be_a_shared_key_are_refused_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        for (bytes, why) in [
            (&b"garbage\n"[..], "7 bytes is too short"),
            (b"taojie-x25519-private AAAA\n", "give it with --identity"),
            (b"taojie-x25519 AAAA me@host\n", "--authorized"),
            (b"-----BEGIN PRIVATE KEY-----\nMIIE\n", "PEM file"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let err = format!("{:#}", Key::load(&path).unwrap_err());
            assert!(err.contains(why) && err.contains("key file"), "{err}");
        }
        std::fs::write(&path, vec![b'k'; 5000]).unwrap();
        let err = format!("{:#}", Key::load(&path).unwrap_err());
        assert!(err.contains("is not a key file (5000 bytes"), "{err}");
    }

    #[test]
    fn only_one_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"a longer secret\n\n").unwrap();
        assert_eq!(Key::load(&path).unwrap().bytes(), b"a longer secret\n");
        std::fs::write(&path, b"\n").unwrap();
        assert!(Key::load(&path).is_err());
    }
}
