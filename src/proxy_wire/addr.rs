//! A destination as a proxy request names it: an address, or a name the proxy resolves.
use std::fmt;
use std::net::IpAddr;

/// Where a client asks to go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A name for the proxy to resolve (at most 255 bytes, as SOCKS5 carries it).
    Name(String),
}

impl Host {
    /// `s` as an address if it is one, else as a name (brackets around IPv6 taken off).
    pub fn parse(s: &str) -> Host {
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(s.to_string()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => a.fmt(f),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// `HOST:PORT` or `[V6]:PORT` (an HTTP CONNECT target, a client's argument) as a host and a
/// port; `None` when it is not one. Names are checked only for being non-empty, at most
/// 255 bytes and free of spaces, controls, slashes and `@` (what a resolver could never take).
pub fn parse_authority(s: &str) -> Option<(Host, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:")?;
        (Host::Ip(IpAddr::V6(v6.parse().ok()?)), port)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if host.contains(':') {
            return None; // IPv6 without brackets: the port cannot be told apart
        }
        (Host::parse(host), port)
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    if let Host::Name(n) = &host
        && (n.is_empty()
            || n.len() > 255
            || n.bytes()
                .any(|b| b <= b' ' || b == 0x7f || b == b'/' || b == b'@'))
    {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_of_every_kind() {
        let ip = |s: &str| Host::Ip(s.parse().unwrap());
        assert_eq!(parse_authority("127.0.0.1:80"), Some((ip("127.0.0.1"), 80)));
        assert_eq!(parse_authority("[::1]:443"), Some((ip("::1"), 443)));
        assert_eq!(
            parse_authority("example.com:8080"),
            Some((Host::Name("example.com".into()), 8080))
        );
        for bad in [
            "::1:80",
            "example.com",
            "a b:1",
            ":80",
            "x:+1",
            "x:65536",
            "[::1]80",
        ] {
            assert_eq!(parse_authority(bad), None, "{bad}");
        }
        assert_eq!(Host::parse("[::1]").to_string(), "[::1]");
    }
}
