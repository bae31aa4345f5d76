//! The users file: one `NAME:HASH` line per user, HASH an Argon2id PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), `#` comments and blank lines allowed. It is
//! read once at start; [`add`] writes one user's line (`taojie proxy-user add FILE NAME`).
//!
//! Checking a password costs Argon2's 19 MiB and some milliseconds by design, so checks run
//! on the blocking pool, two at a time, and a name that is not in the file costs the same
//! as one that is (no telling names apart by timing). A user's connections after the first
//! do not pay again: a keyed BLAKE3 digest of each name and password that passed is kept
//! (at most [`REMEMBERED`]), with a key made at start that never leaves the process.
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// How many passed name-and-password digests are remembered.
pub const REMEMBERED: usize = 4096;
/// Password checks running at once.
const CHECKS_AT_ONCE: usize = 2;

/// The users a proxy lets in.
#[derive(Clone)]
pub struct Users {
    hashes: Arc<HashMap<String, String>>,
    /// A hash of a password nobody has, checked for unknown names.
    decoy: Arc<String>,
    passed: Arc<Mutex<HashSet<[u8; 32]>>>,
    key: [u8; 32],
    checks: Arc<Semaphore>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Users({} names)", self.hashes.len())
    }
}

impl Users {
    /// Reads `path`; every line must be `NAME:PHC` with a hash Argon2 can check.
    pub fn load(path: &Path) -> Result<Users> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        let mut hashes = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{}:{}", path.display(), i + 1);
            let Some((name, hash)) = line.split_once(':') else {
                bail!(
                    "{}: expected NAME:HASH (write lines with `taojie proxy-user add`)",
                    at()
                );
            };
            check_name(name).with_context(at)?;
            if PasswordHash::new(hash).is_err() {
                bail!(
                    "{}: the hash of {name:?} is not a PHC string such as $argon2id$...",
                    at()
                );
            }
            if hashes.insert(name.to_string(), hash.to_string()).is_some() {
                bail!("{}: {name:?} is listed twice", at());
            }
        }
        if hashes.is_empty() {
            bail!("the users file {} lists no user", path.display());
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
        Ok(Users {
            hashes: Arc::new(hashes),
            decoy: Arc::new(hash_password(&key)?),
            passed: Arc::default(),
            key,
            checks: Arc::new(Semaphore::new(CHECKS_AT_ONCE)),
        })
    }

    /// Whether `password` is `name`'s.
    pub async fn check(&self, name: &[u8], password: &[u8]) -> bool {
        let digest = {
            let mut h = blake3::Hasher::new_keyed(&self.key);
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name);
            h.update(password);
            *h.finalize().as_bytes()
        };
        if self.lock().contains(&digest) {
            return true;
        }
        let known = std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.hashes.get(n));
        let hash = known.cloned().unwrap_or_else(|| (*self.decoy).clone());
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let password = password.to_vec();
        let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false);
        let ok = ok && known.is_some();
        if ok {
            let mut passed = self.lock();
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
            passed.insert(digest);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn verify(hash: &str, password: &[u8]) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(password, &h).is_ok(),
        Err(_) => false,
    }
}

/// Argon2id with the crate's default cost and a fresh random salt, as a PHC string.
pub fn hash_password(password: &[u8]) -> Result<String> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// A user name as a users file and RFC 1929 take it: 1 to 255 bytes, no `:`, no spaces or
/// control characters.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        bail!("a user name has 1 to 255 bytes");
    }
    if name
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        bail!("a user name has no `:`, spaces or control characters: {name:?}");
    }
    Ok(())
}

/// Sets `name`'s password in the users file at `path` (created, mode 600, if missing): its
/// line is replaced, or added at the end. The file is replaced whole (written beside it,
/// then renamed), so a reader never sees half of it. Returns whether the user was new.
pub fn add(path: &Path, name: &str, password: &[u8]) -> Result<bool> {
    check_name(name)?;
    if password.is_empty() {
        bail!("empty password");
    }
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let line = format!("{name}:{}", hash_password(password)?);
    let mut new = true;
    let mut out = String::with_capacity(old.len() + line.len() + 1);
    for l in old.lines() {
        if l.split_once(':').is_some_and(|(n, _)| n.trim() == name) {
            new = false;
            out.push_str(&line);
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if new {
        out.push_str(&line);
        out.push('\n');
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .context("the users file needs a file name")?;
    let tmp = dir.join(format!(".{}.new", file_name.to_string_lossy()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn added_users_are_checked_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        assert!(add(&path, "ann", b"s3cret").unwrap());
        assert!(add(&path, "bob", b"first").unwrap());
        assert!(!add(&path, "bob", b"second").unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("s3cret") && text.contains("$argon2id$"));
        let users = Users::load(&path).unwrap();
        assert!(users.check(b"ann", b"s3cret").await);
        assert!(users.check(b"ann", b"s3cret").await); // remembered
        assert!(!users.check(b"ann", b"wrong").await);
        assert!(users.check(b"bob", b"second").await);
        assert!(!users.check(b"bob", b"first").await);
        assert!(!users.check(b"eve", b"s3cret").await);
        assert!(!users.check(b"", b"").await);
        assert!(add(&path, "a:b", b"x").is_err());
    }

    #[test]
    fn bad_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# users\nann:plaintext\n").unwrap();
        let e = format!("{:#}", Users::load(&path).unwrap_err());
        assert!(e.contains(":2") && e.contains("PHC"), "{e}");
    }
}
