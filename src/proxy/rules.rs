//! Which destinations the proxy opens: `--allow RULE` and `--deny RULE` in the order given,
//! first match wins, then the safe defaults. A rule is `TARGET[:PORTS]`: TARGET a CIDR
//! (`10.0.0.0/8`, `[fe80::/10]`), an address (`127.0.0.1`, `[::1]`), a host name
//! (`example.com`), a pattern for its subdomains (`*.example.com`) or `*` (any), PORTS one
//! port or a range (`8000-8999`); `:PORTS` alone means any host. With no rule matching, the
//! loopback, link-local, unspecified and multicast addresses and the proxy host's own
//! addresses are denied (a proxy must not open the machine it runs on, or its link, to its
//! clients), and everything else allowed. A name rule matches the name the client asked
//! for, so `--allow localhost:8080` lets a client reach the local port by that name only.
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open the connection.
    Allow,
    /// Refuse it.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Any,
    Net(IpNet),
    /// A lower-case name without a trailing dot.
    Name(String),
    /// `*.SUFFIX`: names ending in `.SUFFIX`.
    Subdomains(String),
}

/// A port range, both ends included.
type Ports = (u16, u16);

/// One `--allow` or `--deny`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What a match does.
    pub action: Action,
    target: Target,
    ports: Option<Ports>,
    text: String,
}

impl Rule {
    /// Parses `TARGET[:PORTS]` as a rule doing `action`.
    pub fn parse(action: Action, s: &str) -> Result<Rule, String> {
        let bad = |why: &str| format!("bad rule {s:?}: {why}");
        let (target, ports) = split_ports(s).map_err(|e| bad(&e))?;
        let target = if target.is_empty() || target == "*" {
            Target::Any
        } else if let Ok(net) = target.parse::<IpNet>() {
            Target::Net(net.trunc())
        } else if let Ok(ip) = target.parse::<IpAddr>() {
            Target::Net(IpNet::from(ip.to_canonical()))
        } else if let Some(suffix) = target.strip_prefix("*.") {
            Target::Subdomains(name(suffix).ok_or_else(|| bad("not a host name pattern"))?)
        } else {
            Target::Name(name(target).ok_or_else(|| {
                bad("expected a CIDR, an address, a host name, *.DOMAIN or *, then :PORT or :LOW-HIGH")
            })?)
        };
        if target == Target::Any && ports.is_none() && s != "*" {
            return Err(bad("empty"));
        }
        Ok(Rule {
            action,
            target,
            ports,
            text: s.to_string(),
        })
    }

    fn matches(&self, name: Option<&str>, ip: Option<IpAddr>, port: u16) -> Option<bool> {
        if let Some((lo, hi)) = self.ports
            && !(lo..=hi).contains(&port)
        {
            return Some(false);
        }
        Some(match &self.target {
            Target::Any => true,
            Target::Net(net) => net.contains(&ip?.to_canonical()),
            Target::Name(n) => name.is_some_and(|m| normal(m) == *n),
            Target::Subdomains(sfx) => name.is_some_and(|m| {
                let m = normal(m);
                m.len() > sfx.len() + 1
                    && m.ends_with(sfx.as_str())
                    && m[..m.len() - sfx.len()].ends_with('.')
            }),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
        };
        write!(f, "{a} {}", self.text)
    }
}

/// `TARGET[:PORTS]` split into the target and the port range.
fn split_ports(s: &str) -> Result<(&str, Option<Ports>), String> {
    let (target, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("no closing ]")?;
        match after {
            "" => (inner, None),
            _ => (
                inner,
                Some(after.strip_prefix(':').ok_or("expected :PORT after ]")?),
            ),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address or network
    } else {
        match s.split_once(':') {
            Some((t, p)) => (t, Some(p)),
            None => (s, None),
        }
    };
    let ports = match ports {
        None => None,
        Some(p) => {
            let (lo, hi) = p.split_once('-').unwrap_or((p, p));
            let port = |x: &str| x.parse::<u16>().map_err(|_| format!("bad port {x:?}"));
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("port range {lo}-{hi} is empty"));
            }
            Some((lo, hi))
        }
    };
    Ok((target, ports))
}

fn normal(n: &str) -> String {
    n.trim_end_matches('.').to_ascii_lowercase()
}

fn name(s: &str) -> Option<String> {
    let n = normal(s);
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    ok.then_some(n)
}

/// The decision on one destination, and why (for the log line and the metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed or denied.
    pub action: Action,
    /// The rule that decided (`deny 10.0.0.0/8`), or the default that did (`loopback`).
    pub why: String,
}

/// The rules in force, and the proxy host's own addresses.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    own: Vec<IpAddr>,
}

impl Rules {
    /// `rules` in order, with the host's own addresses read now.
    pub fn new(rules: Vec<Rule>) -> Rules {
        let own = if_addrs::get_if_addrs()
            .map(|l| l.into_iter().map(|i| i.ip().to_canonical()).collect())
            .unwrap_or_default();
        Rules { rules, own }
    }

    /// The decision for a request named `name` (if the client sent a name) to `port`,
    /// before the name is resolved: `None` when it depends on the address, so resolving
    /// a name that a rule denies never happens.
    pub fn decide_name(&self, name: &str, port: u16) -> Option<Verdict> {
        for r in &self.rules {
            match r.matches(Some(name), None, port) {
                Some(true) => return Some(by_rule(r)),
                Some(false) => continue,
                None => return None,
            }
        }
        None
    }

    /// The decision for a connection to `ip:port`, asked for by `name` if it was.
    pub fn decide(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Verdict {
        for r in &self.rules {
            if r.matches(name, Some(ip), port) == Some(true) {
                return by_rule(r);
            }
        }
        let ip = ip.to_canonical();
        let default = |why: &str| Verdict {
            action: Action::Deny,
            why: format!("{why} (denied by default)"),
        };
        if ip.is_loopback() {
            return default("loopback");
        }
        if ip.is_unspecified() {
            return default("unspecified address");
        }
        if ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
            return default("multicast or broadcast");
        }
        if is_link_local(ip) {
            return default("link-local");
        }
        if self.own.contains(&ip) {
            return default("the proxy host's own address");
        }
        Verdict {
            action: Action::Allow,
            why: "allowed by default".into(),
        }
    }
}

fn by_rule(r: &Rule) -> Verdict {
    Verdict {
        action: r.action,
        why: r.to_string(),
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Action, String> {
        match s {
            "allow" => Ok(Action::Allow),
            "deny" => Ok(Action::Deny),
            _ => Err(format!("{s:?} is neither allow nor deny")),
        }
    }
}

#[cfg(test)]
mod tests;
