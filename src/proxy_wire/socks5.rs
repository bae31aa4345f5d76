//! SOCKS version 5 (RFC 1928) and its username/password sub-negotiation (RFC 1929): the
//! messages, parsed from bytes as they arrive and encoded for sending. A server reads a
//! [`Greeting`], answers with a method, reads [`Credentials`] if it chose username/password,
//! then a [`Request`], and answers with [`reply`]. Every length on the wire is a single byte,
//! so no message is longer than 513 bytes (credentials) and none needs a bound beyond that.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Host, Parsed};

/// The protocol version byte.
pub const VERSION: u8 = 5;
/// Method: no authentication.
pub const NO_AUTH: u8 = 0x00;
/// Method: username and password (RFC 1929).
pub const USER_PASS: u8 = 0x02;
/// Method reply: none of the offered methods is acceptable.
pub const NO_ACCEPTABLE: u8 = 0xff;
/// The version byte of RFC 1929's sub-negotiation.
pub const USER_PASS_VERSION: u8 = 1;

const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// A request that cannot be served, or bytes that are not SOCKS5 at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The first byte is not 5.
    #[error("not SOCKS5 (version byte {0})")]
    Version(u8),
    /// The greeting offers no method.
    #[error("no authentication method offered")]
    NoMethods,
    /// The sub-negotiation's version is not 1.
    #[error("bad username/password version {0}")]
    AuthVersion(u8),
    /// An address type other than IPv4, name or IPv6.
    #[error("unknown address type {0}")]
    AddressType(u8),
    /// A name of length 0, or not UTF-8.
    #[error("bad host name in the request")]
    BadName,
    /// A reply whose code says the proxy refused.
    #[error("the proxy refused: {}", reply_text(*.0))]
    Refused(u8),
}

/// The client's first message: the methods it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Authentication methods offered (1 to 255).
    pub methods: Vec<u8>,
}

/// Parses `VER NMETHODS METHODS...`.
pub fn parse_greeting(buf: &[u8]) -> Result<Parsed<Greeting>, WireError> {
    let [ver, n, ..] = *buf else {
        return check_version(buf).map(|_| Parsed::Incomplete);
    };
    check_version(&[ver])?;
    let n = usize::from(n);
    if n == 0 {
        return Err(WireError::NoMethods);
    }
    match buf.get(2..2 + n) {
        Some(m) => Ok(Parsed::Done(
            Greeting {
                methods: m.to_vec(),
            },
            2 + n,
        )),
        None => Ok(Parsed::Incomplete),
    }
}

fn check_version(buf: &[u8]) -> Result<(), WireError> {
    match buf.first() {
        Some(&v) if v != VERSION => Err(WireError::Version(v)),
        _ => Ok(()),
    }
}

/// RFC 1929's `VER ULEN UNAME PLEN PASSWD`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (0 to 255 bytes).
    pub user: Vec<u8>,
    /// The password (0 to 255 bytes).
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"MASKED")
            .finish()
    }
}

/// Parses the username/password message. Lengths of 0 parse (RFC 1929 asks for at least
/// 1); no user file has an empty name, so they fail the check that follows.
pub fn parse_credentials(buf: &[u8]) -> Result<Parsed<Credentials>, WireError> {
    let Some(&ver) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    if ver != USER_PASS_VERSION {
        return Err(WireError::AuthVersion(ver));
    }
    let Some(&ulen) = buf.get(1) else {
        return Ok(Parsed::Incomplete);
    };
    let ulen = usize::from(ulen);
    let Some(&plen) = buf.get(2 + ulen) else {
        return Ok(Parsed::Incomplete);
    };
    let end = 3 + ulen + usize::from(plen);
    if buf.len() < end {
        return Ok(Parsed::Incomplete);
    }
    let creds = Credentials {
        user: buf[2..2 + ulen].to_vec(),
        password: buf[3 + ulen..end].to_vec(),
    };
    Ok(Parsed::Done(creds, end))
}

/// The command of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// CONNECT: a TCP connection to the destination.
    Connect,
    /// BIND: wait for a connection from the destination.
    Bind,
    /// UDP ASSOCIATE: relay datagrams.
    UdpAssociate,
    /// Anything else.
    Other(u8),
}

impl From<u8> for Command {
    fn from(b: u8) -> Command {
        match b {
            1 => Command::Connect,
            2 => Command::Bind,
            3 => Command::UdpAssociate,
            b => Command::Other(b),
        }
    }
}

/// A request: `VER CMD RSV ATYP DST.ADDR DST.PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub command: Command,
    /// Where to.
    pub host: Host,
    /// The destination port.
    pub port: u16,
}

/// Parses a request. The reserved byte is not checked (RFC 1928 says it is 0; some clients
/// are careless and nothing depends on it).
pub fn parse_request(buf: &[u8]) -> Result<Parsed<Request>, WireError> {
    check_version(buf)?;
    let [_, cmd, _, atyp, ..] = *buf else {
        return Ok(Parsed::Incomplete);
    };
    let Some((host, used)) = parse_address(atyp, &buf[4..])? else {
        return Ok(Parsed::Incomplete);
    };
    let at = 4 + used;
    let Some(port) = buf.get(at..at + 2) else {
        return Ok(Parsed::Incomplete);
    };
    let request = Request {
        command: Command::from(cmd),
        host,
        port: u16::from_be_bytes([port[0], port[1]]),
    };
    Ok(Parsed::Done(request, at + 2))
}

/// An address of type `atyp` at the start of `buf`, and its length; `None` if incomplete.
fn parse_address(atyp: u8, buf: &[u8]) -> Result<Option<(Host, usize)>, WireError> {
    Ok(match atyp {
        ATYP_V4 => buf.get(..4).map(|b| {
            let a: [u8; 4] = b.try_into().expect("4 bytes");
            (Host::Ip(Ipv4Addr::from(a).into()), 4)
        }),
        ATYP_V6 => buf.get(..16).map(|b| {
            let a: [u8; 16] = b.try_into().expect("16 bytes");
            (Host::Ip(Ipv6Addr::from(a).into()), 16)
        }),
        ATYP_NAME => {
            let Some(&len) = buf.first() else {
                return Ok(None);
            };
            let len = usize::from(len);
            let Some(name) = buf.get(1..1 + len) else {
                return Ok(None);
            };
            let name = std::str::from_utf8(name).map_err(|_| WireError::BadName)?;
            if name.is_empty() {
                return Err(WireError::BadName);
            }
            Some((Host::Name(name.to_string()), 1 + len))
        }
        other => return Err(WireError::AddressType(other)),
    })
}

/// Reply codes (RFC 1928 section 6).
pub mod code {
    /// Succeeded.
    pub const SUCCEEDED: u8 = 0;
    /// General SOCKS server failure.
    pub const FAILURE: u8 = 1;
    /// Connection not allowed by ruleset.
    pub const NOT_ALLOWED: u8 = 2;
    /// Network unreachable.
    pub const NETWORK_UNREACHABLE: u8 = 3;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 4;
    /// Connection refused.
    pub const CONNECTION_REFUSED: u8 = 5;
    /// TTL expired (taken for a timeout).
    pub const TTL_EXPIRED: u8 = 6;
    /// Command not supported.
    pub const COMMAND_NOT_SUPPORTED: u8 = 7;
    /// Address type not supported.
    pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 8;
}

/// What a reply code means, for error messages.
pub fn reply_text(code: u8) -> &'static str {
    match code {
        code::SUCCEEDED => "succeeded",
        code::FAILURE => "general failure",
        code::NOT_ALLOWED => "connection not allowed by ruleset",
        code::NETWORK_UNREACHABLE => "network unreachable",
        code::HOST_UNREACHABLE => "host unreachable",
        code::CONNECTION_REFUSED => "connection refused",
        code::TTL_EXPIRED => "TTL expired",
        code::COMMAND_NOT_SUPPORTED => "command not supported",
        code::ADDRESS_TYPE_NOT_SUPPORTED => "address type not supported",
        _ => "unknown reply code",
    }
}

/// A reply `VER REP RSV ATYP BND.ADDR BND.PORT` with `code` and the bound address (the
/// unspecified IPv4 address when there is none to tell).
pub fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut out = vec![VERSION, code, 0];
    put_address(&mut out, &Host::Ip(bound.ip()), bound.port());
    out
}

fn put_address(out: &mut Vec<u8>, host: &Host, port: u16) {
    match host {
        Host::Ip(IpAddr::V4(a)) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&a.octets());
        }
        Host::Ip(IpAddr::V6(a)) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&a.octets());
        }
        Host::Name(n) => {
            out.push(ATYP_NAME);
            // Names are checked for length before a request is made (encode_request).
            out.push(n.len() as u8);
            out.extend_from_slice(n.as_bytes());
        }
    }
    out.extend_from_slice(&port.to_be_bytes());
}

/// A client's greeting offering `methods`.
pub fn encode_greeting(methods: &[u8]) -> Vec<u8> {
    let mut out = vec![VERSION, methods.len() as u8];
    out.extend_from_slice(methods);
    out
}

/// A client's username/password message; `None` if either is longer than 255 bytes.
pub fn encode_credentials(user: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    let (ulen, plen) = (
        u8::try_from(user.len()).ok()?,
        u8::try_from(password.len()).ok()?,
    );
    let mut out = vec![USER_PASS_VERSION, ulen];
    out.extend_from_slice(user);
    out.push(plen);
    out.extend_from_slice(password);
    Some(out)
}

/// A client's request; `None` if a name is longer than 255 bytes (or empty).
pub fn encode_request(command: u8, host: &Host, port: u16) -> Option<Vec<u8>> {
    if let Host::Name(n) = host
        && (n.is_empty() || n.len() > 255)
    {
        return None;
    }
    let mut out = vec![VERSION, command, 0];
    put_address(&mut out, host, port);
    Some(out)
}

/// Parses a server's reply to a request: the bound address on success, the code as an
/// error otherwise.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed<(Host, u16)>, WireError> {
    check_version(buf)?;
    let [_, rep, _, atyp, ..] = *buf else {
        return Ok(Parsed::Incomplete);
    };
    if rep != code::SUCCEEDED {
        return Err(WireError::Refused(rep));
    }
    let Some((host, used)) = parse_address(atyp, &buf[4..])? else {
        return Ok(Parsed::Incomplete);
    };
    let at = 4 + used;
    match buf.get(at..at + 2) {
        Some(p) => Ok(Parsed::Done(
            (host, u16::from_be_bytes([p[0], p[1]])),
            at + 2,
        )),
        None => Ok(Parsed::Incomplete),
    }
}

/// A UDP ASSOCIATE datagram's header: `RSV RSV FRAG ATYP DST.ADDR DST.PORT`, then the
/// payload. Returns the address, the port and where the payload starts; `None` for a
/// fragment (FRAG not 0, which a relay may drop) or a header cut short.
pub fn parse_udp_header(buf: &[u8]) -> Result<Option<(Host, u16, usize)>, WireError> {
    let [_, _, frag, atyp, ..] = *buf else {
        return Ok(None);
    };
    if frag != 0 {
        return Ok(None);
    }
    let Some((host, used)) = parse_address(atyp, &buf[4..])? else {
        return Ok(None);
    };
    let at = 4 + used;
    Ok(buf
        .get(at..at + 2)
        .map(|p| (host, u16::from_be_bytes([p[0], p[1]]), at + 2)))
}

/// The header a relay puts before a datagram from `from` on its way to the client; a
/// client puts the same before one for `from` (names allowed, up to 255 bytes).
pub fn encode_udp_header(host: &Host, port: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0];
    put_address(&mut out, host, port);
    out
}

#[cfg(test)]
mod tests;
