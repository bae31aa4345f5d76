//! The parser: every valid address and mask reads back exactly; every bad one is refused with
//! the reason; no text makes it panic.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

#[test]
fn address_prefix_and_netmask_forms() {
    let cases = [
        ("192.168.1.77", v4("192.168.1.77"), None),
        ("192.168.1.77/24", v4("192.168.1.77"), Some(24)),
        ("192.168.1.77/255.255.255.0", v4("192.168.1.77"), Some(24)),
        (" 10.0.0.1/0 ", v4("10.0.0.1"), Some(0)),
        ("10.0.0.1/032", v4("10.0.0.1"), Some(32)),
        ("0.0.0.0/0.0.0.0", v4("0.0.0.0"), Some(0)),
        ("2001:db8::1/64", "2001:db8::1".parse().unwrap(), Some(64)),
        ("::/ffff:ffff::", "::".parse().unwrap(), Some(32)),
        (
            "::ffff:1.2.3.4/128",
            "::ffff:1.2.3.4".parse().unwrap(),
            Some(128),
        ),
    ];
    for (text, addr, prefix) in cases {
        assert_eq!(
            input(text),
            Ok(Input {
                addr,
                prefix,
                zone: None
            }),
            "{text}"
        );
    }
}

#[test]
fn an_ipv6_zone_is_kept_apart() {
    let got = input("fe80::1%eth0/64").unwrap();
    assert_eq!(
        (got.addr, got.prefix, got.zone.as_deref()),
        ("fe80::1".parse().unwrap(), Some(64), Some("eth0"))
    );
}

#[test]
fn bad_addresses_say_why() {
    let cases = [
        ("256.1.1.1", "256 is out of range (0-255)"),
        ("1.2.3.999", "999 is out of range"),
        ("1.2.3", "it has 3 parts"),
        ("1.2.3.4.5", "it has 5 parts"),
        ("1..3.4", "an empty part"),
        ("01.2.3.4", "leading zero"),
        ("1.2.3.-4", "-4 is not a number"),
        ("example.com", "does not look up names"),
        ("12345", "is not an IP address"),
        ("", "no address given"),
        ("fe80::1%", "a zone (%)"),
        ("fe80::1%a%b", "a zone (%)"),
        ("1.2.3.4%eth0", "only IPv6 addresses have zones"),
        ("[::1]", "without brackets"),
        ("1::2::3", "one run of zero groups"),
        ("12345::", "more than 4 hex digits"),
        ("::g", "g is not a group of hex digits"),
        ("::ffff:1.2.3.256", "256 is out of range"),
        ("1:2:3:4:5:6:7:8:9", "8 groups"),
    ];
    for (text, want) in cases {
        let err = input(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn bad_prefixes_and_masks_say_why() {
    let cases = [
        ("1.2.3.4/33", "prefix /33 is out of range for IPv4 (0-32)"),
        ("::/129", "prefix /129 is out of range for IPv6 (0-128)"),
        ("1.2.3.4/99999999999999999999", "out of range"),
        ("1.2.3.4/", "nothing after '/'"),
        ("1.2.3.4/x", "x is not a prefix length or a netmask"),
        ("1.2.3.4/-1", "-1 is not a prefix length"),
        ("1.2.3.4/+24", "+24 is not a prefix length"),
        ("1.2.3.4/24/8", "is not a"),
        (
            "1.2.3.4/255.0.255.0",
            "255.0.255.0 is not a netmask: its one-bits are not contiguous \
             (11111111.00000000.11111111.00000000)",
        ),
        (
            "1.2.3.4/0.0.0.255",
            "0.0.0.255 is a wildcard mask, not a netmask; the netmask is 255.255.255.0 (/24)",
        ),
        (
            "1.2.3.4/ffff::",
            "netmask ffff:: is IPv6 but the address is IPv4",
        ),
        (
            "::1/255.0.0.0",
            "netmask 255.0.0.0 is IPv4 but the address is IPv6",
        ),
        ("::1/ffff::ffff", "not contiguous"),
    ];
    for (text, want) in cases {
        let err = input(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

fn v4_mask(p: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0))
}

proptest! {
    #[test]
    fn every_ipv4_address_reads_back(bits: u32, p in 0u8..=32) {
        let a = Ipv4Addr::from(bits);
        prop_assert_eq!(input(&format!("{a}/{p}")), Ok(Input { addr: a.into(), prefix: Some(p), zone: None }));
        prop_assert_eq!(input(&format!("{a}/{}", v4_mask(p))), Ok(Input { addr: a.into(), prefix: Some(p), zone: None }));
    }

    #[test]
    fn every_ipv6_address_reads_back(bits: u128, p in 0u8..=128) {
        let a = Ipv6Addr::from(bits);
        let mask = Ipv6Addr::from(u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0));
        prop_assert_eq!(input(&format!("{a}/{p}")), Ok(Input { addr: a.into(), prefix: Some(p), zone: None }));
        prop_assert_eq!(prefix_for(&mask.to_string(), a.into()), Ok(p));
        // The fully expanded form too.
        let full = a.segments().map(|g| format!("{g:04x}")).join(":");
        prop_assert_eq!(address(&full), Ok(IpAddr::V6(a)));
    }

    #[test]
    fn an_octet_past_255_is_named(octets in proptest::array::uniform4(0u32..1000), at in 0usize..4) {
        let mut octets = octets;
        octets[at] = octets[at].max(256);
        let text = octets.map(|o| o.to_string()).join(".");
        let err = address(&text).unwrap_err().to_string();
        let named = format!("{} is out of range (0-255)", octets.iter().find(|&&o| o > 255).unwrap());
        prop_assert!(err.contains(&named), "{}: {}", text, err);
    }

    #[test]
    fn non_contiguous_masks_are_refused(bits: u32) {
        let contiguous = bits.leading_ones() + bits.trailing_zeros() == 32;
        let result = netmask_prefix(IpAddr::V4(Ipv4Addr::from(bits)));
        prop_assert_eq!(result.is_ok(), contiguous);
        if let Ok(p) = result {
            prop_assert_eq!(u32::from(p), bits.leading_ones());
        }
    }

    #[test]
    fn no_text_panics(text in "\\PC{0,40}") {
        let _ = input(&text);
        let _ = prefix_for(&text, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let _ = prefix_for(&text, IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn near_miss_text_never_panics(text in "[0-9a-f.:/%\\[\\]]{0,45}") {
        let _ = input(&text);
    }
}
