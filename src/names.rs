//! Names that cross the wire: one validation used by the files server (put, get, ls), its
//! client (get) and the messenger's attachments (`msg listen --accept-files`), and escaping
//! for terminals. Resolving a name beneath a root is the files store's, never done here on
//! paths.
use std::fmt;

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
    /// A control character (newline, ESC, DEL, C1...): it would reach someone's terminal.
    #[error("control characters (newline, ESC, ...) are not allowed in names")]
    Control,
    /// A bidirectional override or isolate, which can make a name read as another.
    #[error("bidirectional overrides (U+202A-U+202E, U+2066-U+2069) are not allowed in names")]
    Bidi,
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
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name.chars().any(is_bidi) {
        return Err(NameError::Bidi);
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

/// Whether `c` is a bidirectional embedding, override or isolate (U+202A-U+202E,
/// U+2066-U+2069).
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The name with control and escape characters shown as escapes, safe for a terminal.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        // Bidirectional overrides can disguise a name as well as escapes can.
        if c.is_control() || is_bidi(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
            ("a\nb", NameError::Control),
            ("a/\x1b[2Jb", NameError::Control),
            ("a\x7f", NameError::Control),
            ("a\u{9b}b", NameError::Control),
            ("invoice\u{202e}fdp.exe", NameError::Bidi),
            ("a\u{2066}/b", NameError::Bidi),
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

        #[test]
        fn a_valid_name_needs_no_escaping(name in "\\PC{0,12}[\\x00-\\x1f\\x7f-\\x9f\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}]?\\PC{0,12}") {
            if let Ok(n) = validate(&name) {
                prop_assert_eq!(escape(n.as_str()), n.as_str());
            }
        }
    }
}
