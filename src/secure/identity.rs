//! Identity keys, as ssh has them: a static X25519 key pair per user or server
//! (`taojie keygen --identity FILE`), the server's list of public keys it lets in
//! (`--authorized FILE`, re-read on SIGHUP), and the client's record of the servers it has met
//! (`$XDG_CONFIG_HOME/taojie/known_hosts`, trust on first use, a changed key refused).
//!
//! Formats, one line each: the private file `taojie-x25519-private BASE64`, the public file
//! and every authorized or known key `taojie-x25519 BASE64 [COMMENT]` (known_hosts lines start
//! with the address). BASE64 is standard base64 of the 32 key bytes.
use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The tag in front of every public key.
pub const PUBLIC_TAG: &str = "taojie-x25519";
const PRIVATE_TAG: &str = "taojie-x25519-private";

/// A public key: 32 bytes of X25519.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_TAG} {}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PublicKey {
    /// Parses `taojie-x25519 BASE64 [COMMENT]`.
    pub fn parse(line: &str) -> Result<PublicKey> {
        let mut words = line.split_whitespace();
        if words.next() != Some(PUBLIC_TAG) {
            bail!("expected `{PUBLIC_TAG} BASE64 [COMMENT]`");
        }
        let b64 = words.next().context("no key after the tag")?;
        Ok(PublicKey(decode32(b64)?))
    }

    /// A short fingerprint for messages: the first 12 base64 characters of BLAKE3(key).
    pub fn fingerprint(&self) -> String {
        let hash = blake3::hash(&self.0);
        STANDARD.encode(hash.as_bytes())[..12].to_string()
    }
}

fn decode32(b64: &str) -> Result<[u8; 32]> {
    let raw = STANDARD.decode(b64).context("not base64")?;
    raw.try_into()
        .map_err(|raw: Vec<u8>| anyhow::anyhow!("a key is 32 bytes, this is {}", raw.len()))
}

/// A static key pair. Its `Debug` form never shows the private half.
#[derive(Clone)]
pub struct Identity {
    /// The private key.
    pub(crate) private: [u8; 32],
    /// The public key.
    pub public: PublicKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, private MASKED)", self.public)
    }
}

impl Identity {
    /// A fresh key pair.
    pub fn generate() -> Result<Identity> {
        let kp = snow::Builder::new(super::PATTERN_XX.parse()?)
            .generate_keypair()
            .context("generate a key pair")?;
        let private: [u8; 32] = kp.private.as_slice().try_into().context("key size")?;
        let public: [u8; 32] = kp.public.as_slice().try_into().context("key size")?;
        Ok(Identity {
            private,
            public: PublicKey(public),
        })
    }

    /// Reads a private key file (and warns when others may read it).
    pub fn load(path: &Path) -> Result<Identity> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read identity file {}", path.display()))?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "identity file is readable by other users; chmod 600 it");
        }
        let mut words = text.split_whitespace();
        if words.next() != Some(PRIVATE_TAG) {
            bail!(
                "{}: not a taojie identity file (expected `{PRIVATE_TAG} BASE64`; \
                 the .pub file is the public half)",
                path.display()
            );
        }
        let private = decode32(words.next().unwrap_or_default())
            .with_context(|| format!("identity file {}", path.display()))?;
        let public = x25519_public(&private)?;
        Ok(Identity { private, public })
    }

    /// Writes the pair: `path` (mode 0600) and `path.pub`, never replacing either. Returns
    /// the public key line written.
    pub fn save(&self, path: &Path, comment: &str) -> Result<String> {
        let pub_path = public_path(path);
        if pub_path.exists() {
            bail!("{} already exists; not overwriting it", pub_path.display());
        }
        let line = format!("{} {comment}", self.public).trim_end().to_string();
        write_new(
            path,
            &format!("{PRIVATE_TAG} {}\n", STANDARD.encode(self.private)),
            0o600,
        )?;
        write_new(&pub_path, &format!("{line}\n"), 0o644)?;
        Ok(line)
    }
}

/// `FILE.pub` beside `FILE`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| crate::auth::create_error(e, path, ""))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The public half of an X25519 private key (a DH with the base point, through snow's
/// resolver, so no second curve implementation is needed).
fn x25519_public(private: &[u8; 32]) -> Result<PublicKey> {
    use snow::resolvers::{CryptoResolver, DefaultResolver};
    let mut dh = DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .context("no X25519")?;
    dh.set(private);
    let public: [u8; 32] = dh.pubkey().try_into().context("key size")?;
    Ok(PublicKey(public))
}

/// The public keys a server lets in, read from a file and re-read on demand (SIGHUP).
#[derive(Debug, Clone)]
pub struct Authorized {
    path: PathBuf,
    keys: Arc<RwLock<HashSet<PublicKey>>>,
}

impl Authorized {
    /// Reads `path`: one `taojie-x25519 BASE64 [COMMENT]` per line; blank lines and `#`
    /// comments are skipped; a malformed line is an error naming it.
    pub fn load(path: &Path) -> Result<Authorized> {
        let keys = read_authorized(path)?;
        Ok(Authorized {
            path: path.to_path_buf(),
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    /// Reads the file again; on an error the keys in force stay as they were. Returns how
    /// many keys are authorized now.
    pub fn reload(&self) -> Result<usize> {
        let keys = read_authorized(&self.path)?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(n)
    }

    /// Whether `key` may come in.
    pub fn allows(&self, key: &PublicKey) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Re-reads the file on every SIGHUP for as long as the process runs, saying what it did.
    pub fn reload_on_sighup(&self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let me = self.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match me.reload() {
                    Ok(n) => {
                        tracing::info!(path = %me.path.display(), keys = n, "re-read the authorized keys")
                    }
                    Err(e) => tracing::warn!("kept the authorized keys in force: {e:#}"),
                }
            }
        });
        Ok(())
    }
}

fn read_authorized(path: &Path) -> Result<HashSet<PublicKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read authorized keys {}", path.display()))?;
    let mut keys = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key =
            PublicKey::parse(line).with_context(|| format!("{} line {}", path.display(), i + 1))?;
        keys.insert(key);
    }
    Ok(keys)
}

/// What the client's record says of a server's key.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    /// The key on record is this one.
    Same,
    /// No key on record for this address: it was added now.
    Pinned,
}

/// The client's known_hosts file: `ADDRESS taojie-x25519 BASE64` lines.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// `$XDG_CONFIG_HOME/taojie/known_hosts`, else `~/.config/taojie/known_hosts`.
    pub fn default_file() -> Result<KnownHosts> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
            .context("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep known_hosts")?;
        Ok(KnownHosts {
            path: base.join("taojie").join("known_hosts"),
        })
    }

    /// The file at `path`.
    pub fn at(path: &Path) -> KnownHosts {
        KnownHosts {
            path: path.to_path_buf(),
        }
    }

    /// Checks `key` for `address`: the same as on record, or pinned now when there is no
    /// record; a different key is an error that says so and where the record is.
    pub fn check(&self, address: &str, key: &PublicKey) -> Result<Known> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.path.display())),
        };
        for (i, line) in text.lines().enumerate() {
            let Some((addr, rest)) = line.trim().split_once(char::is_whitespace) else {
                continue;
            };
            if addr != address {
                continue;
            }
            let pinned = PublicKey::parse(rest.trim())
                .with_context(|| format!("{} line {}", self.path.display(), i + 1))?;
            if pinned == *key {
                return Ok(Known::Same);
            }
            bail!(
                "the server at {address} has changed its identity key (now {}, on record {}): \
                 someone may be in the middle. If the change is expected, remove line {} of {}",
                key.fingerprint(),
                pinned.fingerprint(),
                i + 1,
                self.path.display()
            );
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .with_context(|| format!("open {}", self.path.display()))?;
        writeln!(f, "{address} {key}").with_context(|| format!("write {}", self.path.display()))?;
        Ok(Known::Pinned)
    }

    /// Where the record is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pairs_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let id = Identity::generate().unwrap();
        let line = id.save(&path, "ann@box").unwrap();
        assert!(line.starts_with("taojie-x25519 ") && line.ends_with(" ann@box"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = Identity::load(&path).unwrap();
        assert_eq!(back.public, id.public);
        assert_eq!(PublicKey::parse(&line).unwrap(), id.public);
        assert!(
            id.save(&path, "again")
                .unwrap_err()
                .to_string()
                .contains("not overwriting")
        );
        assert!(!format!("{back:?}").contains(&STANDARD.encode(back.private)));
        assert!(Identity::load(&public_path(&path)).is_err());
    }

    #[test]
    fn authorized_files_skip_comments_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorized");
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        std::fs::write(&path, format!("# team\n\n{} ann\n", a.public)).unwrap();
        let auth = Authorized::load(&path).unwrap();
        assert!(auth.allows(&a.public) && !auth.allows(&b.public));
        std::fs::write(&path, format!("{}\n", b.public)).unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert!(!auth.allows(&a.public) && auth.allows(&b.public));
        std::fs::write(&path, "taojie-x25519 !!!\n").unwrap();
        let err = format!("{:#}", auth.reload().unwrap_err());
        assert!(err.contains("line 1"), "{err}");
        assert!(auth.allows(&b.public), "a bad file keeps the keys in force");
    }

    #[test]
    fn known_hosts_pin_on_first_use_and_refuse_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::at(&dir.path().join("sub/known_hosts"));
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        assert_eq!(known.check("h:1", &a.public).unwrap(), Known::Pinned);
        assert_eq!(known.check("h:1", &a.public).unwrap(), Known::Same);
        assert_eq!(known.check("h:2", &b.public).unwrap(), Known::Pinned);
        let err = known.check("h:1", &b.public).unwrap_err().to_string();
        assert!(
            err.contains("changed its identity key") && err.contains("line 1"),
            "{err}"
        );
    }
}
