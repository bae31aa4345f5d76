//! Addresses as users type them: `HOST:PORT`, with an IPv4 literal, a bracketed IPv6 literal
//! or a name as the host. [`parse`] is the one parser every flag, positional and configuration
//! key that takes an address goes through ([`host_port`] is its clap value parser), so that
//! every mistake gets the same kind of sentence: `expected HOST:PORT (e.g. 127.0.0.1:9007 or
//! [::1]:9007); 99999 is not a port (1-65535)`. [`resolve`] parses, then looks names up.
//!
//! Ground floor: this module imports nothing from the rest of the crate.
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use anyhow::{Result, anyhow};

/// What every address error begins with.
pub const EXPECTED: &str = "expected HOST:PORT (e.g. 127.0.0.1:9007 or [::1]:9007)";

/// An address checked for form, not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host: an address, or a name to look up.
    pub host: Host,
    /// The port (0 lets a listener pick one).
    pub port: u16,
}

/// The host part of a [`HostPort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A name for the resolver.
    Name(String),
}

/// Why a text is not a `HOST:PORT`: the part after [`EXPECTED`]'s semicolon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError(String);

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{EXPECTED}; {}", self.0)
    }
}

impl std::error::Error for AddrError {}

fn wrong(why: impl Into<String>) -> AddrError {
    AddrError(why.into())
}

/// Checks the form of `s`: `HOST:PORT` with a port from 0 to 65535, an IPv6 host in
/// brackets, a name of letters, digits, `-`, `_` and dots. Looks nothing up.
pub fn parse(s: &str) -> Result<HostPort, AddrError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        // A literal, an IPv6 one perhaps with its scope (`[fe80::1%2]:80`).
        let host = Host::Ip(sa.ip());
        return Ok(HostPort {
            host,
            port: sa.port(),
        });
    }
    if s.is_empty() {
        return Err(wrong("the address is empty"));
    }
    if s.contains("://") || s.contains('/') {
        return Err(wrong(format!("{s} is not HOST:PORT (a URL or a path?)")));
    }
    if let Ok(v6) = s.parse::<Ipv6Addr>() {
        return Err(wrong(format!(
            "{s} reads as an IPv6 address without a port: write it in brackets, then the \
             port, as [{v6}]:PORT"
        )));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(wrong(format!("{s} opens a [ it does not close")));
        };
        let ip = inside
            .parse::<Ipv6Addr>()
            .map_err(|_| wrong(format!("[{inside}] is not an IPv6 address")))?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => return Err(wrong(format!("{s} has no port"))),
            None => return Err(wrong(format!("{s}: after ] comes :PORT"))),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(wrong(format!("{s} has no port")));
        };
        if host.is_empty() {
            return Err(wrong(format!(
                "{s} has no host (0.0.0.0{s} listens on every IPv4 interface)"
            )));
        }
        (host_of(host)?, port)
    };
    if port.is_empty() {
        return Err(wrong(format!("{s} has no port after the colon")));
    }
    let port = match port.parse::<u32>() {
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) && p <= 65535 => p as u16,
        _ => return Err(wrong(format!("{port} is not a port (1-65535)"))),
    };
    Ok(HostPort { host, port })
}

/// The host of an unbracketed `HOST:PORT`: an IPv4 literal or a name.
fn host_of(host: &str) -> Result<Host, AddrError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if host.contains(':') {
        return Err(wrong(format!(
            "{host} is not an IPv6 address; an IPv6 address goes in brackets before the port"
        )));
    }
    let fits = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if host.len() > 253 || !host.bytes().all(fits) {
        return Err(wrong(format!("{host:?} is not a host name")));
    }
    Ok(Host::Name(host.to_string()))
}

/// [`parse`] as a clap value parser: the text as given, once its form is right.
pub fn host_port(s: &str) -> Result<String, AddrError> {
    parse(s).map(|_| s.to_string())
}

/// A comma-separated list of `HOST:PORT`s, each checked by [`parse`] (clap value parser).
pub fn host_port_list(s: &str) -> Result<String, AddrError> {
    for one in s.split(',').map(str::trim) {
        if one.is_empty() {
            return Err(wrong(format!("{s:?} has an empty address in the list")));
        }
        parse(one)?;
    }
    Ok(s.to_string())
}

/// Resolves `HOST:PORT` to every address it names, in the resolver's order. A form that
/// [`parse`] refuses, or a name that does not resolve, is one line naming `addr`.
pub async fn resolve(addr: &str) -> Result<Vec<SocketAddr>> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let hp = parse(addr).map_err(|e| anyhow!("bad address {addr:?}: {e}"))?;
    let name = match hp.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(ip, hp.port)]),
        Host::Name(name) => name,
    };
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((name.as_str(), hp.port)).await {
        Ok(found) => found.collect(),
        Err(e) => {
            let why = e.to_string();
            let why = why
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&why);
            return Err(anyhow!("{addr}: cannot resolve {name} ({why})"));
        }
    };
    if found.is_empty() {
        return Err(anyhow!("{addr}: {name} resolves to no address"));
    }
    Ok(found)
}

/// Resolves `HOST:PORT` to the one address a server binds: the first the resolver gives.
pub async fn resolve_one(addr: &str) -> Result<SocketAddr> {
    Ok(resolve(addr).await?[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn why(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn each_mistake_has_its_sentence_after_the_same_start() {
        for (input, tail) in [
            ("127.0.0.1:99999", "99999 is not a port (1-65535)"),
            ("localhost:http", "http is not a port (1-65535)"),
            ("127.0.0.1:+80", "+80 is not a port (1-65535)"),
            ("127.0.0.1", "127.0.0.1 has no port"),
            ("[::1]", "[::1] has no port"),
            ("127.0.0.1:", "127.0.0.1: has no port after the colon"),
            (
                "::1",
                "::1 reads as an IPv6 address without a port: write it in brackets, then the \
                 port, as [::1]:PORT",
            ),
            ("[::1:9007", "[::1:9007 opens a [ it does not close"),
            ("[zz]:1", "[zz] is not an IPv6 address"),
            (
                ":9007",
                ":9007 has no host (0.0.0.0:9007 listens on every IPv4 interface)",
            ),
            (
                "http://h:80",
                "http://h:80 is not HOST:PORT (a URL or a path?)",
            ),
            ("a b:80", "\"a b\" is not a host name"),
            ("", "the address is empty"),
        ] {
            assert_eq!(why(input), format!("{EXPECTED}; {tail}"), "{input}");
        }
    }

    #[test]
    fn literals_and_names_parse() {
        let hp = parse("[::1]:0").unwrap();
        assert_eq!((hp.host, hp.port), (Host::Ip("::1".parse().unwrap()), 0));
        assert_eq!(parse("example.test:65535").unwrap().port, 65535);
        assert_eq!(parse("[fe80::1%2]:80").unwrap().port, 80);
        assert_eq!(
            parse("my-host_1.lan:7").unwrap().host,
            Host::Name("my-host_1.lan".into())
        );
        assert!(host_port_list("127.0.0.1:1, [::1]:2").is_ok());
        assert!(host_port_list("127.0.0.1:1,,[::1]:2").is_err());
    }

    #[tokio::test]
    async fn literals_resolve_without_lookup_and_names_through_it() {
        assert_eq!(resolve_one("127.0.0.1:7").await.unwrap().port(), 7);
        assert!(resolve_one("[::1]:0").await.unwrap().is_ipv6());
        assert!(resolve_one("localhost:9").await.is_ok());
        let err = resolve("127.0.0.1:99999").await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("bad address \"127.0.0.1:99999\": {EXPECTED}; 99999 is not a port (1-65535)")
        );
        let err = resolve("nosuch.invalid:80").await.unwrap_err().to_string();
        assert!(
            err.starts_with("nosuch.invalid:80: cannot resolve nosuch.invalid ("),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn every_socket_address_written_out_parses_back(sa: SocketAddr) {
            let hp = parse(&sa.to_string()).unwrap();
            prop_assert_eq!(hp.host, Host::Ip(sa.ip()));
            prop_assert_eq!(hp.port, sa.port());
        }

        #[test]
        fn any_text_is_an_address_or_one_line_of_why(s in "\\PC{0,40}") {
            match parse(&s) {
                Ok(hp) => prop_assert!(s.ends_with(&hp.port.to_string())),
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.starts_with(EXPECTED) && !text.contains('\n'));
                }
            }
        }
    }
}
