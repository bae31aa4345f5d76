//! Reading what the user typed — `ADDR`, `ADDR/PREFIX`, `ADDR/NETMASK`, `--mask MASK`, a new
//! prefix — into addresses and prefix lengths, with an error that says exactly what is wrong.
//! Nothing is guessed: no names are resolved, octets with leading zeros (octal or decimal?) and
//! wildcard masks given as netmasks are refused with a hint rather than read one way or the other.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::bits::{digits, shown};

/// An address as typed, with the prefix length if one came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The address, host bits and all.
    pub addr: IpAddr,
    /// The prefix length after `/` (given as a number or a netmask), if any.
    pub prefix: Option<u8>,
    /// An IPv6 zone (`fe80::1%eth0`): the interface, which plays no part in the arithmetic.
    pub zone: Option<String>,
}

/// Why some text is not an address, a prefix length or a netmask.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Nothing where an address belongs.
    #[error("no address given")]
    Empty,
    /// Looks like IPv4 (dots) but is not one.
    #[error("{input} is not an IPv4 address: {why}")]
    Ipv4 {
        /// The text, safe to print.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// Looks like IPv6 (colons) but is not one.
    #[error("{input} is not an IPv6 address: {why}")]
    Ipv6 {
        /// The text, safe to print.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// Neither dots nor colons, or a name.
    #[error("{0} is not an IP address{1}")]
    NotAnAddress(String, &'static str),
    /// A prefix length past the family's width.
    #[error("prefix /{prefix} is out of range for {family} (0-{max})")]
    PrefixRange {
        /// The digits as typed.
        prefix: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// 32 or 128.
        max: u8,
    },
    /// Neither a number nor an address after `/` or `--mask`.
    #[error("{0} is not a prefix length or a netmask")]
    Mask(String),
    /// A netmask whose one-bits are not one run from the left.
    #[error("{mask} is not a netmask: its one-bits are not contiguous ({digits})")]
    NonContiguous {
        /// The mask as typed.
        mask: String,
        /// The mask digit by digit.
        digits: String,
    },
    /// A wildcard (host) mask where a netmask belongs, e.g. `0.0.0.255`.
    #[error("{mask} is a wildcard mask, not a netmask; the netmask is {netmask} (/{prefix})")]
    Wildcard {
        /// The mask as typed.
        mask: String,
        /// Its inverse, the netmask meant.
        netmask: IpAddr,
        /// That netmask's prefix length.
        prefix: u8,
    },
    /// An IPv4 mask for an IPv6 address or the other way round.
    #[error("netmask {mask} is {mask_family} but the address is {addr_family}")]
    FamilyMismatch {
        /// The mask as typed.
        mask: String,
        /// The mask's family.
        mask_family: &'static str,
        /// The address's family.
        addr_family: &'static str,
    },
}

/// "IPv4" or "IPv6".
pub fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The widest prefix of the address's family: 32 or 128.
pub fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `ADDR`, `ADDR/PREFIX` or `ADDR/NETMASK`.
pub fn input(text: &str) -> Result<Input, ParseError> {
    let text = text.trim();
    let (addr_text, mask_text) = match text.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (text, None),
    };
    // `fe80::1%eth0`, as ping and ssh print it; Python's ipaddress reads it too.
    let (addr_text, zone) = match addr_text.split_once('%') {
        Some((a, z)) if a.contains(':') && !z.is_empty() && !z.contains('%') => (a, Some(shown(z))),
        _ => (addr_text, None),
    };
    let addr = address(addr_text)?;
    let prefix = match mask_text {
        None => None,
        Some("") => {
            return Err(ParseError::Mask(format!(
                "{} (nothing after '/')",
                shown(text)
            )));
        }
        Some(m) => Some(prefix_for(m, addr)?),
    };
    Ok(Input { addr, prefix, zone })
}

/// An IPv4 or IPv6 address, nothing else.
pub fn address(text: &str) -> Result<IpAddr, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text.contains(':') {
        ipv6(text).map(IpAddr::V6)
    } else if text.contains('.') {
        ipv4(text).map(IpAddr::V4)
    } else {
        Err(ParseError::NotAnAddress(shown(text), ""))
    }
}

fn ipv4(text: &str) -> Result<Ipv4Addr, ParseError> {
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    if text.contains('%') {
        return Err(ParseError::Ipv4 {
            input: shown(text),
            why: "only IPv6 addresses have zones (%)".into(),
        });
    }
    if text.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(ParseError::NotAnAddress(
            shown(text),
            " (ipcalc does not look up names)",
        ));
    }
    let bad = |why: String| ParseError::Ipv4 {
        input: shown(text),
        why,
    };
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return Err(bad(format!(
            "it has {} parts; an address has 4 (a.b.c.d)",
            parts.len()
        )));
    }
    for part in parts {
        if part.is_empty() {
            return Err(bad("an empty part between dots".into()));
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("{} is not a number", shown(part))));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(bad(format!(
                "{part} has a leading zero (octal or decimal?); write it without"
            )));
        }
        if part.parse::<u8>().is_err() {
            return Err(bad(format!("{part} is out of range (0-255)")));
        }
    }
    Err(bad("not a.b.c.d".into()))
}

fn ipv6(text: &str) -> Result<Ipv6Addr, ParseError> {
    if let Ok(a) = text.parse() {
        return Ok(a);
    }
    let bad = |why: String| ParseError::Ipv6 {
        input: shown(text),
        why,
    };
    if text.contains('%') {
        return Err(bad(
            "a zone (%) belongs after the address, once, and is not empty".into(),
        ));
    }
    if text.starts_with('[') || text.ends_with(']') {
        return Err(bad("write it without brackets".into()));
    }
    if text.matches("::").count() > 1 {
        return Err(bad("'::' may stand for one run of zero groups only".into()));
    }
    // A trailing dotted IPv4 part (`::ffff:1.2.3.4`) is checked as IPv4.
    let (groups, tail) = match text.rsplit_once(':') {
        Some((head, last)) if last.contains('.') => (head, Some(last)),
        _ => (text, None),
    };
    if let Some(tail) = tail {
        ipv4(tail).map_err(|e| bad(format!("its IPv4 part: {e}")))?;
    }
    for group in groups.split(':') {
        if !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "{} is not a group of hex digits",
                shown(group)
            )));
        }
        if group.len() > 4 {
            return Err(bad(format!("{group} has more than 4 hex digits")));
        }
    }
    Err(bad(
        "8 groups of up to 4 hex digits, or fewer with one '::'".into(),
    ))
}

/// A prefix length for `addr`'s family: `24`, `/24`, or a netmask (`255.255.255.0`, `ffff::`).
pub fn prefix_for(text: &str, addr: IpAddr) -> Result<u8, ParseError> {
    let text = text.trim();
    let digits_only = text.strip_prefix('/').unwrap_or(text);
    if !digits_only.is_empty() && digits_only.bytes().all(|b| b.is_ascii_digit()) {
        let max = max_prefix(addr);
        return match digits_only.parse::<u32>() {
            Ok(p) if p <= u32::from(max) => Ok(p as u8),
            _ => Err(ParseError::PrefixRange {
                prefix: digits_only.to_string(),
                family: family(addr),
                max,
            }),
        };
    }
    if !text.contains('.') && !text.contains(':') {
        return Err(ParseError::Mask(shown(text)));
    }
    let mask = address(text).map_err(|e| match e {
        ParseError::NotAnAddress(..) => ParseError::Mask(shown(text)),
        e => e,
    })?;
    if mask.is_ipv4() != addr.is_ipv4() {
        return Err(ParseError::FamilyMismatch {
            mask: shown(text),
            mask_family: family(mask),
            addr_family: family(addr),
        });
    }
    netmask_prefix(mask).map_err(|e| match e {
        ParseError::NonContiguous { digits, .. } => ParseError::NonContiguous {
            mask: shown(text),
            digits,
        },
        ParseError::Wildcard {
            netmask, prefix, ..
        } => ParseError::Wildcard {
            mask: shown(text),
            netmask,
            prefix,
        },
        e => e,
    })
}

/// The prefix length of a netmask; refuses masks whose one-bits are not contiguous, and says
/// so when the mask is a wildcard mask (its inverse is a netmask).
pub fn netmask_prefix(mask: IpAddr) -> Result<u8, ParseError> {
    let prefix = match mask {
        IpAddr::V4(m) => ipnet::ipv4_mask_to_prefix(m),
        IpAddr::V6(m) => ipnet::ipv6_mask_to_prefix(m),
    };
    if let Ok(p) = prefix {
        return Ok(p);
    }
    let inverse = match mask {
        IpAddr::V4(m) => IpAddr::V4(!m),
        IpAddr::V6(m) => IpAddr::V6(!m),
    };
    let inverse_prefix = match inverse {
        IpAddr::V4(m) => ipnet::ipv4_mask_to_prefix(m),
        IpAddr::V6(m) => ipnet::ipv6_mask_to_prefix(m),
    };
    Err(match inverse_prefix {
        Ok(prefix) => ParseError::Wildcard {
            mask: mask.to_string(),
            netmask: inverse,
            prefix,
        },
        Err(_) => ParseError::NonContiguous {
            mask: mask.to_string(),
            digits: digits(mask),
        },
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
