//! The output for people: aligned label/value columns, IPv4 values beside their 32 bits, and
//! the "same subnet?" AND written out digit by digit as seed 002 does it.
use std::io::{self, Write};
use std::net::IpAddr;

use ipnet::IpNet;

use super::bits::{carets, digits};
use super::calc::Summary;
use super::compare::Comparison;
use super::split::Split;

/// Width of the label column (`First host: `).
const LABEL: usize = 12;

/// One address or network, and the IPv6 zone it was given with.
pub fn describe(out: &mut impl Write, s: &Summary, zone: Option<&str>) -> io::Result<()> {
    let v4 = s.version == 4;
    // (label, value, the address to show in bits beside it)
    let mut rows: Vec<(&str, String, Option<IpAddr>)> =
        vec![("Address", s.address.to_string(), Some(s.address))];
    if let Some(zone) = zone {
        rows.push((
            "Zone",
            format!("%{zone} (the interface; no part of the arithmetic)"),
            None,
        ));
    }
    if !v4 {
        rows.push(("Expanded", digits(s.address), None));
    }
    rows.extend([
        (
            "Netmask",
            format!("{} = /{}", s.netmask, s.prefix),
            Some(s.netmask),
        ),
        ("Wildcard", s.wildcard.to_string(), Some(s.wildcard)),
        (
            "Network",
            format!("{}/{}", s.network, s.prefix),
            Some(s.network),
        ),
        ("Broadcast", broadcast(s), s.broadcast),
        ("First host", s.first.to_string(), Some(s.first)),
        ("Last host", s.last.to_string(), Some(s.last)),
        ("Hosts", hosts(s), None),
    ]);
    if let Some(class) = s.class {
        rows.push(("Class", format!("{class} (historical)"), None));
    }
    let note = if s.kind_note.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.kind_note)
    };
    rows.push(("Kind", format!("{}{note}", s.kind.name()), None));

    let width = rows
        .iter()
        .filter(|r| r.2.is_some())
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0);
    for (label, value, bits) in rows {
        let label = format!("{label}:");
        match bits {
            Some(bits) if v4 => writeln!(out, "{label:<LABEL$}{value:<width$}  {}", digits(bits))?,
            _ => writeln!(out, "{label:<LABEL$}{value}")?,
        }
    }
    if s.host_bits_set() {
        writeln!(
            out,
            "Note:       {} has host bits set ({}); its network is {}/{}",
            s.address,
            s.host_part(),
            s.network,
            s.prefix
        )?;
    }
    Ok(())
}

fn broadcast(s: &Summary) -> String {
    match (s.broadcast, s.version, s.prefix) {
        (Some(b), ..) => b.to_string(),
        (None, 6, _) => "none (IPv6 has no broadcast)".into(),
        (None, _, 31) => "none (/31 point-to-point link, RFC 3021)".into(),
        (None, ..) => "none (/32 is a single address)".into(),
    }
}

fn hosts(s: &Summary) -> String {
    let n = s.hosts;
    match (s.version, s.prefix) {
        (4, 32) | (6, 128) => format!("{n} (a single address)"),
        (4, 31) => format!("{n} (point-to-point link, RFC 3021: both addresses are hosts)"),
        (6, 127) => format!("{n} (point-to-point link, RFC 6164: both addresses are hosts)"),
        (4, p) => format!(
            "{n} (2^{} - 2: all but the network and broadcast addresses)",
            32 - p
        ),
        (_, p) => format!(
            "{n} (2^{} - 1: all but {}, the Subnet-Router anycast address)",
            128 - u16::from(p),
            s.network
        ),
    }
}

/// Two addresses: each ANDed with the mask, digit by digit, and whether the results agree.
pub fn compare(out: &mut impl Write, c: &Comparison) -> io::Result<()> {
    let (a, b, mask) = (c.a().addr(), c.b().addr(), c.netmask());
    let (net_a, net_b) = (c.a().network(), c.b().network());
    let same = c.same_subnet();
    if same {
        writeln!(out, "Same subnet: yes, {}", c.a().trunc())?;
    } else {
        writeln!(
            out,
            "Same subnet: no, {} and {}",
            c.a().trunc(),
            c.b().trunc()
        )?;
    }
    writeln!(out)?;
    if a.is_ipv6() {
        writeln!(out, "In hexadecimal, each digit four bits:")?;
        writeln!(out)?;
    }
    let width = [a, b, mask]
        .iter()
        .map(|x| x.to_string().len())
        .max()
        .unwrap_or(0);
    for (i, (addr, and)) in [(a, net_a), (b, net_b)].into_iter().enumerate() {
        writeln!(out, "{:<width$}  {}", addr.to_string(), digits(addr))?;
        writeln!(out, "{:<width$}  {}", mask.to_string(), digits(mask))?;
        writeln!(out, "{:<width$}  {} = {and}", "AND", digits(and))?;
        if i == 0 {
            writeln!(out)?;
        }
    }
    if !same {
        writeln!(
            out,
            "{:<width$}  {}",
            "",
            carets(&digits(net_a), &digits(net_b))
        )?;
    }
    writeln!(out)?;
    let prefix = c.a().prefix_len();
    if same {
        writeln!(
            out,
            "Both ANDs are {net_a}, so {a} and {b} are in the same subnet, {net_a}/{prefix}."
        )
    } else {
        writeln!(
            out,
            "The ANDs differ ({net_a} and {net_b}), so {a} and {b} are not in the same subnet \
             under netmask {mask} (/{prefix})."
        )
    }
}

/// How many subnets are measured for the column widths before the list starts.
const MEASURED: usize = 65_536;

/// The subnets of a split, one per line under a header.
pub fn split(out: &mut impl Write, input: IpNet, split: &Split) -> io::Result<()> {
    if input.addr() != input.network() {
        writeln!(
            out,
            "Note: {input} has host bits set; splitting its network {}",
            split.net()
        )?;
    }
    let each = Summary::of(split.subnets().next().unwrap_or(split.net()));
    let count = split.count();
    let plural = if count.0 == 0 { "" } else { "s" };
    writeln!(
        out,
        "{} split into /{}: {count} subnet{plural}, {} hosts each",
        split.net(),
        split.new_prefix(),
        each.hosts
    )?;
    let row = |net: IpNet| {
        let s = Summary::of(net);
        let mut cells = vec![net.to_string(), s.first.to_string(), s.last.to_string()];
        cells.extend(s.broadcast.map(|b| b.to_string()));
        cells
    };
    let mut header = vec!["Subnet", "First host", "Last host"];
    if each.broadcast.is_some() {
        header.push("Broadcast");
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for cells in split.subnets().take(MEASURED).map(row) {
        for (w, cell) in widths.iter_mut().zip(&cells) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            text.push_str(&format!("{cell:<w$}  "));
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    for cells in split.subnets().map(row) {
        line(out, &cells.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    Ok(())
}
