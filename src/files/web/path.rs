//! A request's path as a name beneath the root, and back: percent-decoded, then held to the
//! same rules as every name that crosses the wire ([`names::validate`]), so `..`, `%2e%2e`,
//! `//etc`, a backslash or a control character never reaches the store.
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::files::names::{self, RelName};

/// What a request's path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name beneath the scope's top (`None`: the top itself).
    pub name: Option<RelName>,
    /// Whether the path ended in `/` (a folder's page, not a file).
    pub slash: bool,
}

/// Parses `rest`, a request's path after its prefix (`a/b%20c/`).
pub fn parse(rest: &str) -> Result<Target, String> {
    let decoded = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| "the path is not UTF-8".to_string())?;
    let slash = decoded.is_empty() || decoded.ends_with('/');
    let trimmed = decoded.strip_suffix('/').unwrap_or(&decoded);
    if trimmed.is_empty() {
        return Ok(Target { name: None, slash });
    }
    let name = names::validate(trimmed).map_err(|e| format!("{}: {e}", names::escape(trimmed)))?;
    Ok(Target {
        name: Some(name),
        slash,
    })
}

/// `a` joined under `top` (either may be the top itself).
pub fn join(top: Option<&RelName>, rel: Option<&RelName>) -> Option<RelName> {
    match (top, rel) {
        (None, r) => r.cloned(),
        (t, None) => t.cloned(),
        (Some(t), Some(r)) => names::validate(&format!("{}/{}", t.as_str(), r.as_str())).ok(),
    }
}

/// Characters left as they are in a path segment: the unreserved ones (RFC 3986).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `prefix` followed by `name`'s components, each percent-encoded, and a final `/` for a
/// folder.
pub fn href(prefix: &str, name: &str, folder: bool) -> String {
    let mut out = prefix.to_string();
    for (i, part) in name.split('/').filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(part, SEGMENT));
    }
    if folder && !out.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_never_become_names() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "%2E%2E",
            "a/%2e%2e/%2e%2e/etc",
            "//etc/passwd",
            "a//b",
            "a%00b",
            "a%5c..%5cb",
            "%ff",
            "a/%0ab",
            "C:x",
            "x/.y.taojie-part",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let t = parse("a/b%20c/").unwrap();
        assert_eq!((t.name.unwrap().as_str(), t.slash), ("a/b c", true));
        assert_eq!(
            parse("").unwrap(),
            Target {
                name: None,
                slash: true
            }
        );
        assert_eq!(parse("%E5%90%8D").unwrap().name.unwrap().as_str(), "名");
    }

    #[test]
    fn hrefs_round_trip() {
        for name in ["a b/c#d?e%f", "名/x", "plain"] {
            let h = href("/", name, false);
            assert!(!h.contains(['#', '?', ' ']), "{h}");
            assert_eq!(parse(&h[1..]).unwrap().name.unwrap().as_str(), name);
        }
        assert_eq!(href("/dav/", "a", true), "/dav/a/");
        assert_eq!(href("/", "", true), "/");
    }

    mod props {
        use proptest::prelude::*;

        use super::super::{href, parse};

        /// Path segments a browser or a client may send, escapes and dots included.
        fn raw_path() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("..".to_string()),
                    Just(".".to_string()),
                    Just("%2e%2e".to_string()),
                    Just("%2E.".to_string()),
                    Just("%2f".to_string()),
                    Just("%5c".to_string()),
                    Just("%00".to_string()),
                    Just("".to_string()),
                    "[a-zA-Z0-9 %._~:-]{0,6}",
                    "\\PC{0,4}",
                ],
                0..6,
            )
            .prop_map(|parts| parts.join("/"))
        }

        proptest! {
            /// Whatever a request's path holds, what comes out is a name beneath the top:
            /// no empty, `.` or `..` component, nothing absolute, no backslash or control.
            #[test]
            fn no_path_climbs_out(rest in raw_path()) {
                if let Ok(Some(name)) = parse(&rest).map(|t| t.name) {
                    let s = name.as_str();
                    prop_assert!(!s.starts_with('/'), "{s:?} from {rest:?}");
                    prop_assert!(!s.contains('\\') && !s.chars().any(char::is_control));
                    for c in s.split('/') {
                        prop_assert!(!matches!(c, "" | "." | ".."), "{s:?} from {rest:?}");
                    }
                }
            }

            /// Every valid name survives the trip through a link and back.
            #[test]
            fn hrefs_name_what_they_link(
                parts in proptest::collection::vec("[^/\\\\\\p{Cc}]{1,8}", 1..4),
                folder in any::<bool>(),
            ) {
                let name = parts.join("/");
                if let Ok(valid) = crate::files::names::validate(&name) {
                    let h = href("/", valid.as_str(), folder);
                    let t = parse(&h[1..]).unwrap();
                    prop_assert_eq!(t.name, Some(valid));
                    prop_assert_eq!(t.slash, folder);
                }
            }
        }
    }
}
