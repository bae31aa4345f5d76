//! What kind of address it is, from the IANA special-purpose registries (RFC 6890 and the
//! RFCs each entry names), and the historical IPv4 class. The most specific entry wins, so a
//! table row may sit inside a wider one (0.0.0.0/32 inside 0.0.0.0/8).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Serialize, Serializer};

/// The kind of an address; `--json` gives its [`name`](Kind::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0.0.0.0`, `::`: no address at all.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`, the limited broadcast.
    Broadcast,
    /// Set aside for examples: TEST-NET-1/2/3, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `100.64.0.0/10`, carrier-grade NAT's shared address space.
    Cgnat,
    /// RFC 1918 networks and IPv6 unique local addresses.
    Private,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// The deprecated IPv6 site-local `fec0::/10`.
    SiteLocal,
    /// `::ffff:0:0/96`, an IPv4 address carried in IPv6.
    Ipv4Mapped,
    /// Set aside by the IETF or not allocated for unicast.
    Reserved,
    /// Everything else: globally routable unicast.
    Global,
}

impl Kind {
    /// The name `--json` and the human output use: `private`, `link-local`, `cgnat`, ...
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unspecified => "unspecified",
            Kind::Loopback => "loopback",
            Kind::LinkLocal => "link-local",
            Kind::Multicast => "multicast",
            Kind::Broadcast => "broadcast",
            Kind::Documentation => "documentation",
            Kind::Cgnat => "cgnat",
            Kind::Private => "private",
            Kind::Benchmarking => "benchmarking",
            Kind::SiteLocal => "site-local",
            Kind::Ipv4Mapped => "ipv4-mapped",
            Kind::Reserved => "reserved",
            Kind::Global => "global",
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A table row: a network, its kind, and what to say about it.
type Row<N> = (N, Kind, &'static str);

const fn v4(a: u8, b: u8, c: u8, d: u8, p: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), p)
}

const fn v6(bits: u128, p: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::from_bits(bits), p)
}

const V4: &[Row<Ipv4Net>] = &[
    (v4(0, 0, 0, 0, 32), Kind::Unspecified, "RFC 1122"),
    (
        v4(0, 0, 0, 0, 8),
        Kind::Reserved,
        "\"this network\", RFC 791",
    ),
    (v4(10, 0, 0, 0, 8), Kind::Private, "RFC 1918"),
    (
        v4(100, 64, 0, 0, 10),
        Kind::Cgnat,
        "shared address space, RFC 6598",
    ),
    (v4(127, 0, 0, 0, 8), Kind::Loopback, "RFC 1122"),
    (v4(169, 254, 0, 0, 16), Kind::LinkLocal, "RFC 3927"),
    (v4(172, 16, 0, 0, 12), Kind::Private, "RFC 1918"),
    (
        v4(192, 0, 0, 0, 24),
        Kind::Reserved,
        "IETF protocol assignments, RFC 6890",
    ),
    (
        v4(192, 0, 2, 0, 24),
        Kind::Documentation,
        "TEST-NET-1, RFC 5737",
    ),
    (v4(192, 168, 0, 0, 16), Kind::Private, "RFC 1918"),
    (v4(198, 18, 0, 0, 15), Kind::Benchmarking, "RFC 2544"),
    (
        v4(198, 51, 100, 0, 24),
        Kind::Documentation,
        "TEST-NET-2, RFC 5737",
    ),
    (
        v4(203, 0, 113, 0, 24),
        Kind::Documentation,
        "TEST-NET-3, RFC 5737",
    ),
    (v4(224, 0, 0, 0, 4), Kind::Multicast, "RFC 5771"),
    (
        v4(255, 255, 255, 255, 32),
        Kind::Broadcast,
        "limited broadcast, RFC 919",
    ),
    (v4(240, 0, 0, 0, 4), Kind::Reserved, "future use, RFC 1112"),
];

const V6: &[Row<Ipv6Net>] = &[
    (v6(0, 128), Kind::Unspecified, "RFC 4291"),
    (v6(1, 128), Kind::Loopback, "RFC 4291"),
    (v6(0xffff_0000_0000, 96), Kind::Ipv4Mapped, "RFC 4291"),
    (v6(0x2001_0db8 << 96, 32), Kind::Documentation, "RFC 3849"),
    (v6(0x3fff << 112, 20), Kind::Documentation, "RFC 9637"),
    (v6(0x2001_0002 << 96, 48), Kind::Benchmarking, "RFC 5180"),
    (
        v6(0x2001 << 112, 23),
        Kind::Reserved,
        "IETF protocol assignments, RFC 2928",
    ),
    (
        v6(0xfc00 << 112, 7),
        Kind::Private,
        "unique local, RFC 4193",
    ),
    (v6(0xfe80 << 112, 10), Kind::LinkLocal, "RFC 4291"),
    (
        v6(0xfec0 << 112, 10),
        Kind::SiteLocal,
        "deprecated, RFC 3879",
    ),
    (v6(0xff00 << 112, 8), Kind::Multicast, "RFC 4291"),
    (
        v6(0x2000 << 112, 3),
        Kind::Global,
        "global unicast, RFC 4291",
    ),
];

/// The kind of `addr` and a few words on where it comes from.
pub fn classify(addr: IpAddr) -> (Kind, &'static str) {
    let found = match addr {
        IpAddr::V4(a) => most_specific(V4.iter().filter(|(n, ..)| n.contains(&a))),
        IpAddr::V6(a) => most_specific(V6.iter().filter(|(n, ..)| n.contains(&a))),
    };
    match (found, addr) {
        (Some(kind_note), _) => kind_note,
        (None, IpAddr::V4(_)) => (Kind::Global, ""),
        // Outside 2000::/3 and the local and multicast blocks, IANA has allocated nothing.
        (None, IpAddr::V6(_)) => (Kind::Reserved, "unallocated, RFC 4291"),
    }
}

fn most_specific<'a, N: Prefix + 'a>(
    rows: impl Iterator<Item = &'a Row<N>>,
) -> Option<(Kind, &'static str)> {
    rows.max_by_key(|(n, ..)| n.len())
        .map(|&(_, kind, note)| (kind, note))
}

trait Prefix {
    fn len(&self) -> u8;
}

impl Prefix for Ipv4Net {
    fn len(&self) -> u8 {
        self.prefix_len()
    }
}

impl Prefix for Ipv6Net {
    fn len(&self) -> u8 {
        self.prefix_len()
    }
}

/// The IPv4 address class by the first bits (historical: classful addressing gave way to CIDR
/// in 1993, RFC 1519); none for IPv6.
pub fn class(addr: IpAddr) -> Option<char> {
    let IpAddr::V4(a) = addr else { return None };
    Some(match a.octets()[0].leading_ones() {
        0 => 'A',
        1 => 'B',
        2 => 'C',
        3 => 'D',
        _ => 'E',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let cases = [
            ("0.0.0.0", Kind::Unspecified),
            ("0.1.2.3", Kind::Reserved),
            ("10.1.2.3", Kind::Private),
            ("100.64.0.1", Kind::Cgnat),
            ("100.128.0.1", Kind::Global),
            ("127.0.0.1", Kind::Loopback),
            ("169.254.1.1", Kind::LinkLocal),
            ("172.31.255.255", Kind::Private),
            ("172.32.0.0", Kind::Global),
            ("192.0.2.1", Kind::Documentation),
            ("198.19.0.1", Kind::Benchmarking),
            ("224.0.0.1", Kind::Multicast),
            ("240.0.0.1", Kind::Reserved),
            ("255.255.255.255", Kind::Broadcast),
            ("8.8.8.8", Kind::Global),
            ("::", Kind::Unspecified),
            ("::1", Kind::Loopback),
            ("::2", Kind::Reserved),
            ("::ffff:10.0.0.1", Kind::Ipv4Mapped),
            ("2001:db8::1", Kind::Documentation),
            ("3fff::1", Kind::Documentation),
            ("2001:2::1", Kind::Benchmarking),
            ("2001::1", Kind::Reserved),
            ("2001:200::1", Kind::Global),
            ("fd12::1", Kind::Private),
            ("fe80::1", Kind::LinkLocal),
            ("fec0::1", Kind::SiteLocal),
            ("ff02::1", Kind::Multicast),
            ("4000::1", Kind::Reserved),
        ];
        for (text, kind) in cases {
            assert_eq!(classify(text.parse().unwrap()).0, kind, "{text}");
        }
    }

    #[test]
    fn classes_by_first_bits() {
        for (text, c) in [
            ("0.0.0.0", 'A'),
            ("127.255.255.255", 'A'),
            ("128.0.0.0", 'B'),
            ("191.255.0.0", 'B'),
            ("192.0.0.0", 'C'),
            ("223.0.0.0", 'C'),
            ("224.0.0.0", 'D'),
            ("239.0.0.0", 'D'),
            ("240.0.0.0", 'E'),
            ("255.255.255.255", 'E'),
        ] {
            assert_eq!(class(text.parse().unwrap()), Some(c), "{text}");
        }
        assert_eq!(class("::1".parse().unwrap()), None);
    }
}
