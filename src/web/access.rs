//! Who may use a page: the page's own origin only (a page on another site must not act in
//! the user's name), a loopback server only by a loopback host name (so a site that rebinds
//! its DNS name to 127.0.0.1 is refused too), and with a key only with the token the server
//! printed in its login URL.
use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secure::ServerAuth;

type HmacSha256 = Hmac<Sha256>;

/// A secret a page's token (and anything else a server signs for a browser) is derived
/// from: the shared key, or with identity keys only the server's private key. Its `Debug`
/// form never shows it.
#[derive(Clone)]
pub struct Token {
    secret: Vec<u8>,
    label: &'static [u8],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(MASKED)")
    }
}

impl Token {
    /// The token of a keyed server, for the page `label` names (each page its own, so the
    /// chat's token opens no files page); `None` when the server has no key.
    pub fn from_auth(auth: &ServerAuth, label: &'static [u8]) -> Option<Token> {
        let secret = match (&auth.psk, &auth.identity) {
            (Some(key), _) => key.bytes().to_vec(),
            (None, Some((id, _))) => id.private.to_vec(),
            (None, None) => return None,
        };
        Some(Token { secret, label })
    }

    /// The token of the secret `secret` (a key file's bytes, or an identity's private key),
    /// for the page `label` names.
    pub fn from_secret(secret: &[u8], label: &'static [u8]) -> Token {
        Token {
            secret: secret.to_vec(),
            label,
        }
    }

    /// HMAC-SHA256 under the secret of `parts`, each preceded by its length (so no two
    /// different lists sign alike).
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed();
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `given` is [`Token::sign`] of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], given: &[u8]) -> bool {
        let mut mac = self.keyed();
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.verify_slice(given).is_ok()
    }

    fn keyed(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length")
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = self.keyed();
        mac.update(self.label);
        mac
    }

    /// HMAC-SHA256(key, label) in lower-case hex: the same for every start with the same
    /// key, so a page keeps working across restarts.
    pub fn hex(&self) -> String {
        hex(&self.mac().finalize().into_bytes())
    }

    /// Whether `given` (hex) is the token, compared in constant time.
    pub fn check(&self, given: &str) -> bool {
        match unhex(given) {
            Some(bytes) if bytes.len() == 32 => self.mac().verify_slice(&bytes).is_ok(),
            _ => false,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex digits (either case, an even count); anything else is `None`.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// Whether a browser's `Origin` is the page's own: `http://HOST` (or `https://HOST`, behind a
/// TLS proxy) where HOST is the `Host` it asked. A request without `Origin` comes from a
/// program, not a page another site could have loaded, and is let through.
pub fn origin_ok(origin: Option<&str>, host: &str) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// Whether `host` (a `Host` header: name or address, and maybe a port) names this machine's
/// loopback: `localhost`, 127.0.0.0/8 or `[::1]`.
pub fn host_is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The value of `name` in a query string (`a=1&token=...`), undecoded (tokens are hex).
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Key;

    #[test]
    fn the_token_is_the_hmac_of_the_label_and_checked_whole() {
        let auth = ServerAuth {
            psk: Some(Key::from_bytes(b"secret").unwrap()),
            ..Default::default()
        };
        let t = Token::from_auth(&auth, b"taojie web token").unwrap();
        let hex = t.hex();
        assert_eq!(hex.len(), 64);
        assert!(t.check(&hex) && t.check(&hex.to_uppercase()));
        let mut wrong = hex.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!t.check(std::str::from_utf8(&wrong).unwrap()));
        assert!(!t.check(&hex[..62]) && !t.check("") && !t.check(&format!("{hex}00")));
        assert!(!t.check(&"zz".repeat(32)));
        assert!(Token::from_auth(&ServerAuth::default(), b"x").is_none());
        assert_eq!(format!("{t:?}"), "Token(MASKED)");
        let other = Token::from_auth(&auth, b"another page").unwrap();
        assert!(!other.check(&hex), "one page's token opens no other page");
    }

    #[test]
    fn signatures_cover_every_part_and_its_bounds() {
        let auth = ServerAuth {
            psk: Some(Key::from_bytes(b"secret").unwrap()),
            ..Default::default()
        };
        let t = Token::from_auth(&auth, b"l").unwrap();
        let sig = t.sign(&[b"ab", b"c"]);
        assert!(t.verify(&[b"ab", b"c"], &sig));
        assert!(!t.verify(&[b"a", b"bc"], &sig));
        assert!(!t.verify(&[b"ab", b"d"], &sig));
    }

    #[test]
    fn origins_and_hosts() {
        assert!(origin_ok(Some("http://127.0.0.1:9080"), "127.0.0.1:9080"));
        assert!(origin_ok(Some("http://LOCALHOST:9080"), "localhost:9080"));
        assert!(origin_ok(None, "127.0.0.1:9080"));
        assert!(!origin_ok(Some("http://evil.example"), "127.0.0.1:9080"));
        assert!(!origin_ok(Some("http://127.0.0.1:9081"), "127.0.0.1:9080"));
        assert!(!origin_ok(Some("null"), "127.0.0.1:9080"));
        for h in [
            "localhost:9080",
            "127.0.0.1:9080",
            "127.1.2.3",
            "[::1]:80",
            "a.localhost",
        ] {
            assert!(host_is_loopback(h), "{h}");
        }
        for h in [
            "evil.example:9080",
            "10.0.0.1:9080",
            "[::2]:80",
            "localhost.evil.example",
        ] {
            assert!(!host_is_loopback(h), "{h}");
        }
        assert_eq!(query_param(Some("a=1&token=ab"), "token"), Some("ab"));
        assert_eq!(query_param(Some("tokens=ab"), "token"), None);
        assert_eq!(query_param(Some("a&json"), "json"), Some(""));
        assert_eq!(query_param(None, "token"), None);
    }
}
