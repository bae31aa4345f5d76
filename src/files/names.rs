//! Names that cross the wire: one validation used by the server (put, get, ls) and the client
//! (get), path resolution that never leaves the root, and escaping for terminals.
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Longest name accepted, in bytes.
pub const MAX_NAME: usize = 4096;
/// Suffixes of taojie's own partial files; names ending so are refused, so no peer can
/// write over another transfer's state.
pub const PART_SUFFIX: &str = ".taojie-part";
/// Suffix of a partial file's resume state.
pub const STATE_SUFFIX: &str = ".taojie-state";

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// Empty, or a component that is empty (`a//b`, a trailing `/`).
    #[error("empty name or empty path component")]
    Empty,
    /// Longer than [`MAX_NAME`].
    #[error("name longer than {MAX_NAME} bytes")]
    TooLong,
    /// Starts with `/`.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// A `.` or `..` component.
    #[error("`.` and `..` are not allowed in names")]
    Dots,
    /// A NUL byte.
    #[error("NUL is not allowed in names")]
    Nul,
    /// A backslash (a Windows separator in disguise).
    #[error("backslash is not allowed in names")]
    Backslash,
    /// `C:` and the like.
    #[error("drive letters are not allowed in names")]
    Drive,
    /// One of taojie's own partial-file names.
    #[error("names ending in {PART_SUFFIX} or {STATE_SUFFIX} are reserved")]
    Reserved,
}

/// A validated relative name: `/`-separated components, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelName(String);

impl RelName {
    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

/// Checks a name from the wire (or the command line).
pub fn validate(name: &str) -> Result<RelName, NameError> {
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    if name.contains('\\') {
        return Err(NameError::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(NameError::Drive);
    }
    for c in name.split('/') {
        match c {
            "" => return Err(NameError::Empty),
            "." | ".." => return Err(NameError::Dots),
            c if c.ends_with(PART_SUFFIX) || c.ends_with(STATE_SUFFIX) => {
                return Err(NameError::Reserved);
            }
            _ => {}
        }
    }
    Ok(RelName(name.to_owned()))
}

/// A directory for `ls`: empty, `.` or `/` mean the root.
pub fn validate_dir(name: &str) -> Result<Option<RelName>, NameError> {
    let trimmed = name.trim_end_matches('/');
    match trimmed {
        "" | "." => Ok(None),
        n => validate(n).map(Some),
    }
}

/// The name with control and escape characters shown as escapes, safe for a terminal.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        // Bidirectional overrides can disguise a name as well as escapes can.
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The refusal for a path that escapes the root.
fn outside() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the name leads out of the root (through a symbolic link)",
    )
}

/// Follows `name`'s parent directories under `root` (canonical), creating missing ones when
/// `create` is set, and returns the real directory the last component lives in. A symbolic
/// link is followed only if where it leads is still under the root.
pub fn parent_dir(root: &Path, name: &RelName, create: bool) -> io::Result<PathBuf> {
    let parts: Vec<&str> = name.components().collect();
    let mut dir = root.to_path_buf();
    for part in &parts[..parts.len() - 1] {
        let next = dir.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                let real = next.canonicalize()?;
                if !real.starts_with(root) {
                    return Err(outside());
                }
                if !real.is_dir() {
                    return Err(not_dir(part));
                }
                dir = real;
            }
            Ok(md) if md.is_dir() => dir = next,
            Ok(_) => return Err(not_dir(part)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&next).or_else(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists if next.is_dir() => Ok(()),
                    _ => Err(e),
                })?;
                dir = next;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

fn not_dir(part: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!("{} is not a directory", escape(part)),
    )
}

/// The real path of an existing `name` under `root` (canonical), refused if it leads out.
pub fn existing(root: &Path, name: Option<&RelName>) -> io::Result<PathBuf> {
    let Some(name) = name else {
        return Ok(root.to_path_buf());
    };
    let dir = parent_dir(root, name, false)?;
    let real = dir.join(name.file_name()).canonicalize()?;
    if !real.starts_with(root) {
        return Err(outside());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        let cases = [
            ("", NameError::Empty),
            ("a//b", NameError::Empty),
            ("a/", NameError::Empty),
            ("../x", NameError::Dots),
            ("a/../../x", NameError::Dots),
            ("./x", NameError::Dots),
            ("/etc/x", NameError::Absolute),
            ("C:\\x", NameError::Backslash),
            ("C:x", NameError::Drive),
            ("a\0b", NameError::Nul),
            ("a\\..\\b", NameError::Backslash),
            (".x.taojie-part", NameError::Reserved),
        ];
        for (name, want) in cases {
            assert_eq!(validate(name), Err(want), "{name:?}");
        }
        for ok in ["a", "a/b/c.txt", "名字 with space", "..a", "a..", ".hidden"] {
            assert_eq!(validate(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        assert_eq!(escape("plain 名"), "plain 名");
    }

    proptest! {
        #[test]
        fn a_valid_name_never_climbs_or_roots(name in "[a-zA-Z./\\\\:\\x00 ]{0,20}") {
            if let Ok(n) = validate(&name) {
                let p = Path::new(n.as_str());
                prop_assert!(p.is_relative());
                prop_assert!(p.components().all(|c| matches!(c, std::path::Component::Normal(_))));
            }
        }
    }
}
