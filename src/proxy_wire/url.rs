//! `--proxy URL`: `socks5://` (names resolved by the client), `socks5h://` (names resolved
//! by the proxy), `http://` (CONNECT), with optional `USER:PASSWORD@`, percent-encoded as in
//! curl's URLs. The password never prints: `Display` leaves credentials out and `Debug`
//! masks them.
use std::fmt;

use percent_encoding::percent_decode_str;

use super::Host;

/// How to talk to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// SOCKS5; the client resolves names and sends addresses.
    Socks5,
    /// SOCKS5; names go to the proxy, which resolves them.
    Socks5h,
    /// HTTP CONNECT (names go to the proxy).
    Http,
}

impl ProxyScheme {
    fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
            ProxyScheme::Http => "http",
        }
    }
}

/// A parsed proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The protocol.
    pub scheme: ProxyScheme,
    /// The proxy's host.
    pub host: Host,
    /// The proxy's port (1080 for SOCKS and 3128 for HTTP when the URL has none).
    pub port: u16,
    /// User name and password, decoded.
    pub credentials: Option<(String, String)>,
}

impl ProxyUrl {
    /// Parses `SCHEME://[USER[:PASSWORD]@]HOST[:PORT]`; errors never quote the password.
    pub fn parse(s: &str) -> Result<ProxyUrl, String> {
        let url = url::Url::parse(s).map_err(|e| format!("bad proxy URL: {e}"))?;
        let scheme = match url.scheme() {
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            "http" => ProxyScheme::Http,
            other => {
                return Err(format!(
                    "proxy scheme {other:?} not supported: socks5://, socks5h:// or http://"
                ));
            }
        };
        if url.path() != "/" && !url.path().is_empty() || url.query().is_some() {
            return Err("a proxy URL has no path or query: SCHEME://HOST:PORT".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => Host::Name(d.to_string()),
            Some(url::Host::Ipv4(a)) => Host::Ip(a.into()),
            Some(url::Host::Ipv6(a)) => Host::Ip(a.into()),
            None => return Err("a proxy URL needs a host".into()),
        };
        let default_port = match scheme {
            ProxyScheme::Http => 3128,
            _ => 1080,
        };
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "proxy credentials are not UTF-8 once decoded".to_string())
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        Ok(ProxyUrl {
            scheme,
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
        })
    }
}

impl std::str::FromStr for ProxyUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ProxyUrl::parse(s)
    }
}

/// `SCHEME://HOST:PORT`, with the user name but never the password.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self}")?;
        if self.credentials.is_some() {
            f.write_str(", password MASKED")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_hidden_passwords() {
        let u = ProxyUrl::parse("socks5h://ann:p%40ss@[::1]:1081").unwrap();
        assert_eq!(u.scheme, ProxyScheme::Socks5h);
        assert_eq!((u.host.to_string(), u.port), ("[::1]".into(), 1081));
        assert_eq!(u.credentials, Some(("ann".into(), "p@ss".into())));
        assert_eq!(u.to_string(), "socks5h://ann@[::1]:1081");
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = ProxyUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.port, u.credentials), (3128, None));
        assert_eq!(ProxyUrl::parse("socks5://h").unwrap().port, 1080);
        let e = ProxyUrl::parse("https://secret:hunter2@h").unwrap_err();
        assert!(e.contains("https") && !e.contains("hunter2"), "{e}");
        assert!(ProxyUrl::parse("socks5://h:1/x").is_err());
    }
}
