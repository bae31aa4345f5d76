//! Who may open the chat's WebSocket: the page's own origin only (a page on another site must
//! not post in the user's name), a loopback server only by a loopback host name (so a site
//! that rebinds its DNS name to 127.0.0.1 is refused too), and with a key only with the token
//! the broker printed in its login URL.
use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secure::ServerAuth;

type HmacSha256 = Hmac<Sha256>;

/// What the token is an HMAC of, under the broker's key.
const LABEL: &[u8] = b"taojie web token";

/// The secret the web token is derived from: the shared key, or with identity keys only the
/// broker's private key. Its `Debug` form never shows it.
pub struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(MASKED)")
    }
}

impl Token {
    /// The token of a keyed broker; `None` when the broker has no key.
    pub fn from_auth(auth: &ServerAuth) -> Option<Token> {
        let secret = match (&auth.psk, &auth.identity) {
            (Some(key), _) => key.bytes().to_vec(),
            (None, Some((id, _))) => id.private.to_vec(),
            (None, None) => return None,
        };
        Some(Token(secret))
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac
    }

    /// HMAC-SHA256(key, "taojie web token") in lower-case hex: the same for every start with
    /// the same key, so a page keeps working across restarts.
    pub fn hex(&self) -> String {
        self.mac()
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `given` (hex) is the token, compared in constant time.
    pub fn check(&self, given: &str) -> bool {
        match unhex(given) {
            Some(bytes) => self.mac().verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

/// Decodes 64 hex digits (either case); anything else is `None`.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
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
        .filter_map(|kv| kv.split_once('='))
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
        let t = Token::from_auth(&auth).unwrap();
        let hex = t.hex();
        assert_eq!(hex.len(), 64);
        assert!(t.check(&hex) && t.check(&hex.to_uppercase()));
        let mut wrong = hex.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!t.check(std::str::from_utf8(&wrong).unwrap()));
        assert!(!t.check(&hex[..62]) && !t.check("") && !t.check(&format!("{hex}00")));
        assert!(!t.check(&"zz".repeat(32)));
        assert!(Token::from_auth(&ServerAuth::default()).is_none());
        assert_eq!(format!("{t:?}"), "Token(MASKED)");
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
        assert_eq!(query_param(None, "token"), None);
    }
}
