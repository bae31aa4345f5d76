//! Proof of address for the UDP hub, as DTLS's HelloVerifyRequest and QUIC's Retry do it: a
//! client that can receive at its address gets a cookie there and echoes it; a forged source
//! address never sees the cookie, so it cannot.
//!
//! Three control datagrams, each starting with a NUL (no seed client's `NAME: text` does):
//! - hello, `\0taojie-hub/1 hello` padded with NULs to [`HELLO_LEN`] bytes; the padding makes
//!   the welcome no larger than the hello, so answering a forged hello reflects nothing more;
//! - welcome, `\0taojie-hub/1 cookie HEX`: the cookie for the address the hello came from;
//! - proof, `\0taojie-hub/1 proof HEX`: the cookie sent back.
//!
//! A cookie is an HMAC-SHA256 of the address and the current minute under a secret the hub
//! draws at start, cut to 16 bytes: the hub keeps no state for it, and it is good for one to
//! two minutes.
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What every control datagram starts with.
const PREFIX: &[u8] = b"\0taojie-hub/1 ";
/// The size of a hello: at least that of the welcome it asks for.
pub const HELLO_LEN: usize = 64;
/// Bytes of a cookie.
const COOKIE_LEN: usize = 16;
/// Seconds a cookie's minute lasts; a cookie of this minute or the one before is good.
const EPOCH_SECS: u64 = 60;

/// A cookie, as issued and as echoed.
pub type Cookie = [u8; COOKIE_LEN];

/// A control datagram between the hub and taojie's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A client asks for a cookie; `padded` says it is at least [`HELLO_LEN`] bytes long.
    Hello {
        /// Padded to [`HELLO_LEN`] bytes: big enough to be answered.
        padded: bool,
    },
    /// The hub's welcome with a cookie.
    Welcome(Cookie),
    /// A client echoes its cookie.
    Proof(Cookie),
    /// Something else with the prefix (a later version's): ignored, never relayed.
    Other,
}

/// Whether `datagram` is a control datagram (and so never relayed or shown).
pub fn is_control(datagram: &[u8]) -> bool {
    datagram.first() == Some(&0)
}

/// Reads a control datagram; `None` when `datagram` is a chat message.
pub fn parse(datagram: &[u8]) -> Option<Control> {
    if !is_control(datagram) {
        return None;
    }
    let Some(rest) = datagram.strip_prefix(PREFIX) else {
        return Some(Control::Other);
    };
    let word = |w: &str| rest.strip_prefix(w.as_bytes());
    let cookie = |hex: &[u8]| -> Option<Cookie> {
        let hex = std::str::from_utf8(hex).ok()?;
        if hex.len() != 2 * COOKIE_LEN {
            return None;
        }
        let mut out = [0u8; COOKIE_LEN];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    };
    Some(if word("hello").is_some() {
        Control::Hello {
            padded: datagram.len() >= HELLO_LEN,
        }
    } else if let Some(c) = word("cookie ").and_then(cookie) {
        Control::Welcome(c)
    } else if let Some(c) = word("proof ").and_then(cookie) {
        Control::Proof(c)
    } else {
        Control::Other
    })
}

/// A hello, padded to [`HELLO_LEN`] bytes.
pub fn hello() -> Vec<u8> {
    let mut out = [PREFIX, b"hello"].concat();
    out.resize(HELLO_LEN, 0);
    out
}

/// A welcome carrying `cookie`.
pub fn welcome(cookie: &Cookie) -> Vec<u8> {
    [PREFIX, b"cookie ", hex(cookie).as_bytes()].concat()
}

/// A proof echoing `cookie`.
pub fn proof(cookie: &Cookie) -> Vec<u8> {
    [PREFIX, b"proof ", hex(cookie).as_bytes()].concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues and checks cookies under one secret.
pub struct Cookies {
    secret: [u8; 32],
}

impl Cookies {
    /// Cookies under a fresh random secret.
    pub fn new() -> std::io::Result<Cookies> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Cookies { secret })
    }

    /// The cookie for `addr` now.
    pub fn issue(&self, addr: SocketAddr) -> Cookie {
        self.at(addr, epoch())
    }

    /// Whether `cookie` is `addr`'s, of this minute or the one before (compared in constant
    /// time).
    pub fn check(&self, addr: SocketAddr, cookie: &Cookie) -> bool {
        let now = epoch();
        [now, now.saturating_sub(1)]
            .into_iter()
            .any(|e| self.mac(addr, e).verify_truncated_left(cookie).is_ok())
    }

    fn at(&self, addr: SocketAddr, epoch: u64) -> Cookie {
        let full = self.mac(addr, epoch).finalize().into_bytes();
        let mut out = [0u8; COOKIE_LEN];
        out.copy_from_slice(&full[..COOKIE_LEN]);
        out
    }

    fn mac(&self, addr: SocketAddr, epoch: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        mac.update(&epoch.to_le_bytes());
        match addr.ip().to_canonical() {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        mac.update(&addr.port().to_be_bytes());
        mac
    }
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / EPOCH_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_proves_its_own_address_only() {
        let cookies = Cookies::new().unwrap();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:5001".parse().unwrap();
        let c = cookies.issue(a);
        assert!(cookies.check(a, &c));
        assert!(!cookies.check(b, &c));
        assert!(!Cookies::new().unwrap().check(a, &c));
        let mut bad = c;
        bad[0] ^= 1;
        assert!(!cookies.check(a, &bad));
        // An old cookie (two minutes back) is no longer good.
        assert!(!cookies.check(a, &cookies.at(a, epoch() - 2)));
    }

    #[test]
    fn control_datagrams_round_trip_and_welcomes_are_no_larger_than_hellos() {
        let c = [7u8; COOKIE_LEN];
        assert_eq!(parse(&hello()), Some(Control::Hello { padded: true }));
        assert_eq!(
            parse(&hello()[..20]),
            Some(Control::Hello { padded: false })
        );
        assert_eq!(parse(&welcome(&c)), Some(Control::Welcome(c)));
        assert_eq!(parse(&proof(&c)), Some(Control::Proof(c)));
        assert!(welcome(&c).len() <= HELLO_LEN);
        assert_eq!(parse(b"ann: hello"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"\0what"), Some(Control::Other));
        assert_eq!(parse(&[PREFIX, b"proof zz"].concat()), Some(Control::Other));
    }
}
