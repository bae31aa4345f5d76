//! The output for people: aligned columns, IPv4 bits, the seeds' AND, the words at the edges.
use super::{taojie, text};

#[test]
fn the_seeds_example_shows_the_and_bit_by_bit() {
    let out = taojie(
        &["172.16.10.1", "172.16.10.2", "--mask", "255.255.255.0"],
        "",
    );
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "\
Same subnet: yes, 172.16.10.0/24

172.16.10.1    10101100.00010000.00001010.00000001
255.255.255.0  11111111.11111111.11111111.00000000
AND            10101100.00010000.00001010.00000000 = 172.16.10.0

172.16.10.2    10101100.00010000.00001010.00000010
255.255.255.0  11111111.11111111.11111111.00000000
AND            10101100.00010000.00001010.00000000 = 172.16.10.0

Both ANDs are 172.16.10.0, so 172.16.10.1 and 172.16.10.2 are in the same subnet, 172.16.10.0/24.
"
    );
}

#[test]
fn different_subnets_mark_the_bits_where_the_ands_differ() {
    let out = text(&taojie(&["172.16.10.1/24", "172.16.11.2"], "").stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Same subnet: no, 172.16.10.0/24 and 172.16.11.0/24"
    );
    assert_eq!(
        lines[8],
        "AND            10101100.00010000.00001011.00000000 = 172.16.11.0"
    );
    assert_eq!(lines[9], "                                        ^");
    assert!(
        lines[11].starts_with("The ANDs differ (172.16.10.0 and 172.16.11.0)"),
        "{out}"
    );
    // IPv6 is written in hex groups, each digit four bits.
    let out = text(&taojie(&["2001:db8::1/62", "2001:db8:0:4::1"], "").stdout);
    assert!(
        out.contains("In hexadecimal, each digit four bits:"),
        "{out}"
    );
    assert!(
        out.contains("ffff:ffff:ffff:fffc::  ffff:ffff:ffff:fffc:0000:0000:0000:0000\n"),
        "{out}"
    );
    assert!(
        out.contains("                                     ^"),
        "{out}"
    );
}

#[test]
fn one_ipv4_network_in_aligned_columns_with_bits() {
    let out = text(&taojie(&["192.168.1.77/24"], "").stdout);
    let lines: Vec<&str> = out.lines().collect();
    let expected_start = [
        "Address:    192.168.1.77         11000000.10101000.00000001.01001101",
        "Netmask:    255.255.255.0 = /24  11111111.11111111.11111111.00000000",
        "Wildcard:   0.0.0.255            00000000.00000000.00000000.11111111",
        "Network:    192.168.1.0/24       11000000.10101000.00000001.00000000",
        "Broadcast:  192.168.1.255        11000000.10101000.00000001.11111111",
        "First host: 192.168.1.1          11000000.10101000.00000001.00000001",
        "Last host:  192.168.1.254        11000000.10101000.00000001.11111110",
        "Hosts:      254 (2^8 - 2: all but the network and broadcast addresses)",
        "Class:      C (historical)",
        "Kind:       private (RFC 1918)",
        "Note:       192.168.1.77 has host bits set (0.0.0.77); its network is 192.168.1.0/24",
    ];
    assert_eq!(lines, expected_start, "{out}");
    // No note when the address is the network.
    assert!(!text(&taojie(&["192.168.1.0/24"], "").stdout).contains("host bits"));
}

#[test]
fn point_to_point_single_hosts_and_ipv6_in_words() {
    let out = text(&taojie(&["10.0.0.1/31"], "").stdout);
    assert!(
        out.contains("Broadcast:  none (/31 point-to-point link, RFC 3021)\n"),
        "{out}"
    );
    assert!(
        out.contains("Hosts:      2 (point-to-point link, RFC 3021: both addresses are hosts)\n"),
        "{out}"
    );
    assert!(out.contains("First host: 10.0.0.0 "), "{out}");
    let out = text(&taojie(&["10.0.0.1", "--mask", "255.255.255.255"], "").stdout);
    assert!(
        out.contains("Broadcast:  none (/32 is a single address)\n"),
        "{out}"
    );
    assert!(out.contains("Hosts:      1 (a single address)\n"), "{out}");
    let out = text(&taojie(&["2001:db8::1/64"], "").stdout);
    for want in [
        "Expanded:   2001:0db8:0000:0000:0000:0000:0000:0001\n",
        "Broadcast:  none (IPv6 has no broadcast)\n",
        "Last host:  2001:db8::ffff:ffff:ffff:ffff\n",
        "Hosts:      18446744073709551615 (2^64 - 1: all but 2001:db8::, the Subnet-Router anycast address)\n",
        "Kind:       documentation (RFC 3849)\n",
    ] {
        assert!(out.contains(want), "{want}{out}");
    }
    assert!(!out.contains("Class"), "{out}");
    let out = text(&taojie(&["fe80::1%eth0/64"], "").stdout);
    assert!(
        out.contains("Zone:       %eth0 (the interface; no part of the arithmetic)\n"),
        "{out}"
    );
}

#[test]
fn split_in_either_order_with_a_cap() {
    let a = taojie(&["192.168.0.0/16", "--split", "18"], "");
    let b = taojie(&["--split", "192.168.0.0/16", "18"], "");
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(
        text(&a.stdout),
        "\
192.168.0.0/16 split into /18: 4 subnets, 16382 hosts each
Subnet            First host     Last host        Broadcast
192.168.0.0/18    192.168.0.1    192.168.63.254   192.168.63.255
192.168.64.0/18   192.168.64.1   192.168.127.254  192.168.127.255
192.168.128.0/18  192.168.128.1  192.168.191.254  192.168.191.255
192.168.192.0/18  192.168.192.1  192.168.255.254  192.168.255.255
"
    );
    // Exactly at the cap is fine; a higher --limit lifts it.
    let out = taojie(&["10.0.0.0/8", "--split", "24", "--json"], "");
    assert_eq!(text(&out.stdout).lines().count(), 65_536);
    let out = taojie(
        &["10.0.0.0/7", "--split", "24", "--limit", "131072", "--json"],
        "",
    );
    assert_eq!(text(&out.stdout).lines().count(), 131_072);
}
