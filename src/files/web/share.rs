//! Share links: one file or folder, read-only, until a time, signed with the server's key so
//! that no state is kept and a restart (with the same key) keeps them valid. The link is
//! `/.taojie/share/TOKEN/` followed by paths inside what was shared; TOKEN is
//! `NAME64.EXPIRES.SIG` with NAME64 the shared name (base64url, no padding; empty for the
//! root), EXPIRES a Unix time in seconds and SIG HMAC-SHA256 (hex) of both under the key.
//! Changing the key revokes every link.
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::files::names::{self, RelName};
use crate::web::Token;
use crate::web::access::{hex, unhex};

/// The URL prefix of every share link.
pub const PREFIX: &str = "/.taojie/share/";
/// What a share link's signature is a HMAC of, first.
pub const LABEL: &[u8] = b"taojie files share";

/// Why a share link is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a link this server signed (altered, or another key's).
    #[error("this share link is not valid (altered, or made with another key)")]
    Forged,
    /// Signed, but its time is over.
    #[error("this share link has expired")]
    Expired,
}

/// The token of a link to `name` (the root for `None`) valid until `expires` (Unix seconds).
pub fn token(key: &Token, name: Option<&RelName>, expires: u64) -> String {
    let name = name.map_or("", |n| n.as_str());
    let sig = key.sign(&[LABEL, name.as_bytes(), expires.to_string().as_bytes()]);
    format!(
        "{}.{expires}.{}",
        URL_SAFE_NO_PAD.encode(name.as_bytes()),
        hex(&sig)
    )
}

/// The shared name a link's token stands for, if it is valid at `now` (Unix seconds).
pub fn check(key: &Token, token: &str, now: u64) -> Result<Option<RelName>, Refused> {
    let mut parts = token.split('.');
    let (Some(name64), Some(expires), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Forged);
    };
    let name = URL_SAFE_NO_PAD
        .decode(name64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Refused::Forged)?;
    // One spelling per link: the signature as it was made, lower-case hex (an upper-case
    // digit would decode to the same bytes, a second link for the same grant).
    if sig.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Refused::Forged);
    }
    let sig = unhex(sig)
        .filter(|s| s.len() == 32)
        .ok_or(Refused::Forged)?;
    if !expires.bytes().all(|b| b.is_ascii_digit()) || expires.len() > 20 {
        return Err(Refused::Forged);
    }
    if !key.verify(&[LABEL, name.as_bytes(), expires.as_bytes()], &sig) {
        return Err(Refused::Forged);
    }
    let expires: u64 = expires.parse().map_err(|_| Refused::Forged)?;
    if now >= expires {
        return Err(Refused::Expired);
    }
    match name.as_str() {
        "" => Ok(None),
        n => names::validate(n).map(Some).map_err(|_| Refused::Forged),
    }
}

/// Seconds since the Unix epoch now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A whole link: `http://HOST` + [`PREFIX`] + the token + `/` (what follows a folder's link
/// is a path inside it).
pub fn link(host: &str, key: &Token, name: Option<&RelName>, expires: u64) -> String {
    format!("http://{host}{PREFIX}{}/", token(key, name, expires))
}

/// `taojie share ADDR NAME`: prints the link on standard output (and until when it works on
/// standard error).
pub fn run(args: crate::files::ShareOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    let secret = match (&args.identity, &args.key) {
        (Some(id), _) => crate::secure::identity::Identity::load(id)?
            .private
            .to_vec(),
        (None, Some(k)) => crate::auth::Key::load(k)?.bytes().to_vec(),
        (None, None) => {
            let path = crate::auth::default_path()?;
            crate::auth::Key::load(&path)
                .with_context(|| {
                    format!("no --key given, and taojie's own key at {}", path.display())
                })?
                .bytes()
                .to_vec()
        }
    };
    let key = Token::from_secret(&secret, super::TOKEN_LABEL);
    let name = names::validate_dir(args.name.trim_start_matches('/'))
        .map_err(|e| anyhow::anyhow!("{}: {e}", names::escape(&args.name)))?;
    let host = args
        .addr
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        anyhow::bail!("{}: the page's address is HOST:PORT", args.addr);
    }
    let expires = now().saturating_add(args.expires);
    println!("{}", link(host, &key, name.as_ref(), expires));
    let until = chrono::DateTime::from_timestamp(expires as i64, 0).unwrap_or_default();
    eprintln!(
        "valid until {} (UTC), read-only",
        until.format("%Y-%m-%d %H:%M:%S")
    );
    Ok(())
}

/// Parses a duration for `--expires`: a number and a unit (`s`, `m`, `h`, `d`, `w`; seconds
/// without one), e.g. `90m`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a number and a unit, e.g. 30m, 1h, 7d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d, w")),
    };
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("{s:?}: from 1s to many years")),
        Some(secs) => Ok(secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Key;
    use crate::secure::ServerAuth;

    fn key(k: &[u8]) -> Token {
        let auth = ServerAuth {
            psk: Some(Key::from_bytes(k).unwrap()),
            ..Default::default()
        };
        Token::from_auth(&auth, b"files").unwrap()
    }

    #[test]
    fn a_link_holds_until_it_expires_and_no_byte_of_it_can_change() {
        let k = key(b"the key");
        let name = names::validate("photos/2026").unwrap();
        let t = token(&k, Some(&name), 1000);
        assert_eq!(check(&k, &t, 999), Ok(Some(name.clone())));
        assert_eq!(check(&k, &t, 1000), Err(Refused::Expired));
        assert_eq!(check(&key(b"other key"), &t, 10), Err(Refused::Forged));
        let later = t.replace(".1000.", ".9000.");
        assert_eq!(check(&k, &later, 10), Err(Refused::Forged));
        let other = format!(
            "{}{}",
            URL_SAFE_NO_PAD.encode("photos"),
            &t[t.find('.').unwrap()..]
        );
        assert_eq!(check(&k, &other, 10), Err(Refused::Forged));
        for junk in ["", "..", "a.b.c.d", "x.1.zz"] {
            assert_eq!(check(&k, junk, 10), Err(Refused::Forged), "{junk}");
        }
        let root = token(&k, None, 50);
        assert_eq!(check(&k, &root, 10), Ok(None));
        // A signed name that is not a valid one is no share.
        let bad = k.sign(&[LABEL, b"../x", b"50"]);
        let forged = format!("{}.50.{}", URL_SAFE_NO_PAD.encode("../x"), hex(&bad));
        assert_eq!(check(&k, &forged, 10), Err(Refused::Forged));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("45"), Ok(45));
        for bad in ["", "h", "1y", "0s", "-1h", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// A link with any one byte changed, or any string at all, is refused.
        #[test]
        fn no_altered_link_is_accepted(
            name in "[a-z0-9 ._-]{1,12}(/[a-z0-9 ._-]{1,12}){0,2}",
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            junk in "\\PC{0,80}",
        ) {
            let k = key(b"the key");
            let Ok(name) = names::validate(&name) else { return Ok(()) };
            let t = token(&k, Some(&name), 1000);
            let mut bytes = t.clone().into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Ok(altered) = String::from_utf8(bytes)
                && altered != t
            {
                proptest::prop_assert!(check(&k, &altered, 10).is_err(), "{altered}");
            }
            proptest::prop_assert_eq!(check(&k, &t, 10), Ok(Some(name)));
            proptest::prop_assert!(check(&k, &junk, 10).is_err());
        }
    }
}
