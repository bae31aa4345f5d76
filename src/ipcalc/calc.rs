//! One network worked out: netmask, wildcard, network, broadcast, first and last host, how many
//! hosts, kind and class. Usable hosts are counted as Python's `ipaddress` counts them (its
//! `hosts()`), since that is the reference users check against:
//!
//! - IPv4 up to /30: every address but the network and the broadcast, 2^(32-p) - 2.
//! - IPv4 /31: both addresses, no broadcast (RFC 3021 point-to-point links).
//! - IPv6 up to /126: every address but the first, the Subnet-Router anycast address (RFC 4291
//!   2.6.1), so 2^(128-p) - 1; the last address is a host, as IPv6 has no broadcast.
//! - IPv6 /127: both addresses (RFC 6164 point-to-point links).
//! - /32 and /128: the one address.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use super::kind::{self, Kind};

/// Everything `taojie ipcalc ADDR/PREFIX` reports; serialises to the `--json` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The address as given, host bits and all.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// The netmask, the prefix's one-bits.
    pub netmask: IpAddr,
    /// The wildcard (host) mask, the netmask inverted.
    pub wildcard: IpAddr,
    /// The address AND the netmask.
    pub network: IpAddr,
    /// IPv4 up to /30 only: the network with every host bit set.
    pub broadcast: Option<IpAddr>,
    /// The first usable host.
    pub first: IpAddr,
    /// The last usable host.
    pub last: IpAddr,
    /// How many usable hosts (up to 2^128 - 1, an exact JSON number).
    pub hosts: u128,
    /// The kind of the address.
    pub kind: Kind,
    /// Where the kind comes from (an RFC), for people.
    #[serde(skip)]
    pub kind_note: &'static str,
    /// The historical IPv4 class, none for IPv6.
    pub class: Option<char>,
    /// 4 or 6.
    pub version: u8,
}

impl Summary {
    /// Works out `net`, whose address is the one the user gave (host bits kept).
    pub fn of(net: IpNet) -> Summary {
        let (first, last, broadcast, hosts) = match net {
            IpNet::V4(n) => v4_hosts(n),
            IpNet::V6(n) => v6_hosts(n),
        };
        let (kind, kind_note) = kind::classify(net.addr());
        Summary {
            address: net.addr(),
            prefix: net.prefix_len(),
            netmask: net.netmask(),
            wildcard: net.hostmask(),
            network: net.network(),
            broadcast,
            first,
            last,
            hosts,
            kind,
            kind_note,
            class: kind::class(net.addr()),
            version: if net.addr().is_ipv4() { 4 } else { 6 },
        }
    }

    /// Whether the address has bits set past the prefix (it is not the network address).
    pub fn host_bits_set(&self) -> bool {
        self.address != self.network
    }

    /// The address AND the wildcard: the host part of the address.
    pub fn host_part(&self) -> IpAddr {
        match (self.address, self.wildcard) {
            (IpAddr::V4(a), IpAddr::V4(w)) => IpAddr::V4(a & w),
            (IpAddr::V6(a), IpAddr::V6(w)) => IpAddr::V6(a & w),
            _ => unreachable!("an address and its mask are of one family"),
        }
    }
}

type Hosts = (IpAddr, IpAddr, Option<IpAddr>, u128);

fn v4_hosts(n: Ipv4Net) -> Hosts {
    let network = u32::from(n.network());
    let broadcast = u32::from(n.broadcast());
    let addr = |bits: u32| IpAddr::V4(Ipv4Addr::from(bits));
    match n.prefix_len() {
        32 | 31 => (
            addr(network),
            addr(broadcast),
            None,
            u128::from(broadcast - network) + 1,
        ),
        p => (
            addr(network + 1),
            addr(broadcast - 1),
            Some(addr(broadcast)),
            u128::from(u32::MAX >> p) - 1,
        ),
    }
}

fn v6_hosts(n: Ipv6Net) -> Hosts {
    let network = u128::from(n.network());
    let last = u128::from(n.broadcast());
    let addr = |bits: u128| IpAddr::V6(Ipv6Addr::from(bits));
    match n.prefix_len() {
        128 | 127 => (addr(network), addr(last), None, last - network + 1),
        p => (addr(network + 1), addr(last), None, u128::MAX >> p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> Summary {
        Summary::of(text.parse().unwrap())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_slash_24_with_host_bits() {
        let s = summary("192.168.1.77/24");
        assert_eq!(s.network, ip("192.168.1.0"));
        assert_eq!(s.broadcast, Some(ip("192.168.1.255")));
        assert_eq!(
            (s.first, s.last, s.hosts),
            (ip("192.168.1.1"), ip("192.168.1.254"), 254)
        );
        assert_eq!(s.wildcard, ip("0.0.0.255"));
        assert!(s.host_bits_set());
        assert_eq!(s.host_part(), ip("0.0.0.77"));
        assert_eq!((s.kind, s.class), (Kind::Private, Some('C')));
    }

    #[test]
    fn the_edges() {
        // (input, first, last, broadcast, hosts)
        let cases: [(&str, &str, &str, Option<&str>, u128); 10] = [
            (
                "0.0.0.0/0",
                "0.0.0.1",
                "255.255.255.254",
                Some("255.255.255.255"),
                (1 << 32) - 2,
            ),
            ("10.0.0.5/30", "10.0.0.5", "10.0.0.6", Some("10.0.0.7"), 2),
            ("10.0.0.1/31", "10.0.0.0", "10.0.0.1", None, 2),
            ("10.0.0.1/32", "10.0.0.1", "10.0.0.1", None, 1),
            (
                "255.255.255.255/32",
                "255.255.255.255",
                "255.255.255.255",
                None,
                1,
            ),
            (
                "::/0",
                "::1",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                None,
                u128::MAX,
            ),
            (
                "2001:db8::1/64",
                "2001:db8::1",
                "2001:db8::ffff:ffff:ffff:ffff",
                None,
                u64::MAX.into(),
            ),
            ("2001:db8::/126", "2001:db8::1", "2001:db8::3", None, 3),
            ("2001:db8::1/127", "2001:db8::", "2001:db8::1", None, 2),
            ("::/128", "::", "::", None, 1),
        ];
        for (text, first, last, broadcast, hosts) in cases {
            let s = summary(text);
            assert_eq!(s.first, ip(first), "{text}");
            assert_eq!(s.last, ip(last), "{text}");
            assert_eq!(s.broadcast, broadcast.map(ip), "{text}");
            assert_eq!(s.hosts, hosts, "{text}");
        }
    }

    #[test]
    fn hosts_past_u64_are_exact_json_numbers() {
        let json = serde_json::to_string(&summary("::/0")).unwrap();
        assert!(
            json.contains(r#""hosts":340282366920938463463374607431768211455,"#),
            "{json}"
        );
        let json = serde_json::to_string(&summary("10.0.0.0/31")).unwrap();
        assert!(json.contains(r#""broadcast":null,"#), "{json}");
        assert!(json.contains(r#""class":"A","#), "{json}");
    }
}
