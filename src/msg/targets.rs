//! Where to find the LAN: the broadcast addresses entries go to, the contacts file, and the
//! host addresses of a subnet for seed 000's send-to-everyone loop.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::packet::PORT;

/// Every up interface's IPv4 broadcast address and 255.255.255.255, on port 2425, as real
/// clients announce themselves.
pub fn default_broadcast() -> Vec<SocketAddr> {
    let mut out = vec![SocketAddr::from((Ipv4Addr::BROADCAST, PORT))];
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for iface in ifaces {
            if !iface.is_loopback()
                // Some links (tun, dummy) report an unknown state while they carry traffic.
                && matches!(
                    iface.oper_status,
                    if_addrs::IfOperStatus::Up | if_addrs::IfOperStatus::Unknown
                )
                && let if_addrs::IfAddr::V4(v4) = iface.addr
                && let Some(b) = v4.broadcast
            {
                let sa = SocketAddr::from((b, PORT));
                if !out.contains(&sa) {
                    out.push(sa);
                }
            }
        }
    }
    out
}

/// Parses `IP` or `IP:PORT` (port 2425 when not given).
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    s.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, PORT))
}

/// The contacts file: `$XDG_CONFIG_HOME/taojie/contacts.toml`, else `~/.config/taojie/…`.
pub fn contacts_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("taojie").join("contacts.toml"))
}

/// The contact book: name → address, as `name = "IP"` or `name = "IP:PORT"` lines. A missing
/// file is an empty book; a malformed one is an error naming the file.
pub fn contacts() -> Result<BTreeMap<String, SocketAddr>> {
    let Some(path) = contacts_path() else {
        return Ok(BTreeMap::new());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let table: BTreeMap<String, String> = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |s| text[..s.start].matches('\n').count() + 1);
        anyhow::anyhow!(
            "{} line {line}: {} (lines are `name = \"IP\"`)",
            path.display(),
            e.message().trim()
        )
    })?;
    table
        .into_iter()
        .map(|(name, addr)| match parse_addr(&addr) {
            Some(sa) => Ok((name, sa)),
            None => bail!("{}: {name}: {addr:?} is not an IP address", path.display()),
        })
        .collect()
}

/// Every host address of `net` (as `A.B.C.D/P`) on port 2425: the network and broadcast
/// addresses left out, at most a /16, and only private or loopback ranges unless `force`.
pub fn subnet_hosts(net: &str, force: bool) -> Result<Vec<SocketAddr>> {
    let net: ipnet::Ipv4Net = net.parse().with_context(|| {
        format!("--subnet {net:?}: expected IPv4 NET/PREFIX, e.g. 192.168.1.0/24")
    })?;
    if net.prefix_len() < 16 {
        bail!("--subnet {net}: at most a /16 (65,534 hosts)");
    }
    let ip = net.network();
    if !(ip.is_private() || ip.is_loopback() || force) {
        bail!("--subnet {net}: not a private or loopback range (add --force if you mean it)");
    }
    Ok(net
        .trunc()
        .hosts()
        .map(|h| SocketAddr::from((h, PORT)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_list_their_hosts_within_limits() {
        let hosts = subnet_hosts("10.1.2.77/24", false).unwrap();
        assert_eq!(hosts.len(), 254);
        assert_eq!(hosts[0], "10.1.2.1:2425".parse().unwrap());
        assert_eq!(subnet_hosts("127.0.0.8/31", false).unwrap().len(), 2);
        assert!(subnet_hosts("10.0.0.0/8", false).is_err());
        assert!(subnet_hosts("8.8.8.0/24", false).is_err());
        assert_eq!(subnet_hosts("8.8.8.0/30", true).unwrap().len(), 2);
    }

    #[test]
    fn addresses_default_to_the_messenger_port() {
        assert_eq!(
            parse_addr("10.0.0.1"),
            Some("10.0.0.1:2425".parse().unwrap())
        );
        assert_eq!(
            parse_addr("10.0.0.1:99"),
            Some("10.0.0.1:99".parse().unwrap())
        );
        assert_eq!(parse_addr("ann"), None);
    }
}
