//! Transit's abilities and hints, as the `transit` message carries them: where the peer may
//! reach us directly (`direct-tcp-v1`) and which relays we would use (`relay-v1`).
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The most hints taken from a peer (each one is a connection we make for it).
pub const MAX_HINTS: usize = 16;

/// A host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpHint {
    /// A name or an address.
    pub hostname: String,
    /// The port.
    pub port: u16,
}

impl TcpHint {
    /// Parses `tcp:HOST:PORT` (the `--transit-helper` form), its `HOST:PORT` as every address
    /// flag's ([`crate::addr::parse`]; a bare v6 address before the port is taken too).
    pub fn parse_helper(s: &str) -> Result<TcpHint, String> {
        let rest = s
            .strip_prefix("tcp:")
            .ok_or_else(|| format!("`{s}` is not tcp:HOST:PORT"))?;
        // Options after the port (`:priority=2.0`) are allowed and ignored.
        let rest = rest.split(":priority=").next().unwrap_or(rest);
        let bare_v6 = rest
            .rsplit_once(':')
            .filter(|(host, _)| host.parse::<std::net::Ipv6Addr>().is_ok())
            .map(|(host, port)| format!("[{host}]:{port}"));
        let hp = crate::addr::parse(bare_v6.as_deref().unwrap_or(rest))
            .map_err(|e| format!("`{s}`: {e}"))?;
        let hostname = match hp.host {
            crate::addr::Host::Ip(ip) => ip.to_string(),
            crate::addr::Host::Name(name) => name,
        };
        Ok(TcpHint {
            hostname,
            port: hp.port,
        })
    }

    /// `HOST:PORT` for connecting (v6 addresses bracketed).
    pub fn address(&self) -> String {
        if self.hostname.contains(':') {
            format!("[{}]:{}", self.hostname, self.port)
        } else {
            format!("{}:{}", self.hostname, self.port)
        }
    }
}

/// The peer's hints, sorted into the kinds we can use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerHints {
    /// Direct connections to the peer.
    pub direct: Vec<TcpHint>,
    /// Relays (each one way to reach a relay; all are equally good).
    pub relays: Vec<TcpHint>,
}

fn tcp_hint(v: &Value) -> Option<TcpHint> {
    let hostname = v.get("hostname")?.as_str()?;
    let port = u16::try_from(v.get("port")?.as_u64()?).ok()?;
    if hostname.is_empty() || hostname.len() > 255 || port == 0 {
        return None;
    }
    Some(TcpHint {
        hostname: hostname.to_string(),
        port,
    })
}

/// Reads the `hints-v1` list of a `transit` message; what we cannot use is skipped, and no
/// more than [`MAX_HINTS`] are taken.
pub fn parse_hints(hints: &Value) -> PeerHints {
    let mut out = PeerHints::default();
    for h in hints.as_array().into_iter().flatten() {
        match h.get("type").and_then(Value::as_str) {
            Some("direct-tcp-v1") => out.direct.extend(tcp_hint(h)),
            Some("relay-v1") => {
                for r in h
                    .get("hints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.relays.extend(tcp_hint(r));
                }
            }
            _ => {}
        }
    }
    out.direct.dedup();
    out.relays.dedup();
    out.direct.truncate(MAX_HINTS);
    out.relays.truncate(MAX_HINTS);
    out
}

/// Our `transit` message: both abilities, our direct hints and our relay.
pub fn transit_message(direct: &[TcpHint], relay: Option<&TcpHint>) -> Value {
    let mut hints: Vec<Value> = direct
        .iter()
        .map(|h| json!({"type": "direct-tcp-v1", "priority": 0.0, "hostname": h.hostname, "port": h.port}))
        .collect();
    if let Some(r) = relay {
        hints.push(json!({"type": "relay-v1", "hints": [
            {"type": "direct-tcp-v1", "priority": 0.0, "hostname": r.hostname, "port": r.port}
        ]}));
    }
    json!({ "transit": {
        "abilities-v1": [{"type": "direct-tcp-v1"}, {"type": "relay-v1"}],
        "hints-v1": hints,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_forms() {
        let h = TcpHint::parse_helper("tcp:127.0.0.1:4001").unwrap();
        assert_eq!(h.address(), "127.0.0.1:4001");
        let h = TcpHint::parse_helper("tcp:[::1]:4001").unwrap();
        assert_eq!(h.address(), "[::1]:4001");
        let h = TcpHint::parse_helper("tcp:relay.example:4001:priority=2.0").unwrap();
        assert_eq!(h.address(), "relay.example:4001");
        let h = TcpHint::parse_helper("tcp:::1:4001").unwrap();
        assert_eq!(h.address(), "[::1]:4001");
        for bad in ["127.0.0.1:4001", "tcp:host", "tcp::1", "tcp:h:99999"] {
            assert!(TcpHint::parse_helper(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trip_and_junk_skipped() {
        let direct = [TcpHint {
            hostname: "127.0.0.1".into(),
            port: 5,
        }];
        let relay = TcpHint {
            hostname: "127.0.0.1".into(),
            port: 6,
        };
        let msg = transit_message(&direct, Some(&relay));
        let parsed = parse_hints(&msg["transit"]["hints-v1"]);
        assert_eq!(parsed.direct, direct);
        assert_eq!(parsed.relays, vec![relay]);
        let junk = json!([{"type": "tor-tcp-v1", "hostname": "x.onion", "port": 1},
            {"type": "direct-tcp-v1", "hostname": "", "port": 1},
            {"type": "direct-tcp-v1", "hostname": "h", "port": 70000},
            {"type": "direct-tcp-v1", "hostname": "h"}, 7, "x"]);
        assert_eq!(parse_hints(&junk), PeerHints::default());
        let many: Vec<Value> = (1..100)
            .map(|p| json!({"type": "direct-tcp-v1", "hostname": "h", "port": p}))
            .collect();
        assert_eq!(parse_hints(&Value::Array(many)).direct.len(), MAX_HINTS);
    }
}
