//! Opening the connection a client asked for: the rules first (a name a rule denies is not
//! even resolved), then every address the name resolves to is checked again, and the allowed
//! ones are tried in turn. A failure is a [`Refusal`], which each protocol turns into its
//! own answer.
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::rules::{Action, Rules};
use crate::proxy_wire::Host;
use crate::proxy_wire::socks5::code;

/// Why no connection was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The rules deny it (the rule or default that did).
    Denied(String),
    /// The name does not resolve.
    NoSuchHost(String),
    /// The target refused the connection.
    Refused(String),
    /// The target or its network cannot be reached.
    Unreachable(String),
    /// No answer in time.
    TimedOut,
    /// Anything else.
    Failed(String),
}

impl Refusal {
    /// The SOCKS5 reply code.
    pub fn socks_code(&self) -> u8 {
        match self {
            Refusal::Denied(_) => code::NOT_ALLOWED,
            Refusal::NoSuchHost(_) => code::HOST_UNREACHABLE,
            Refusal::Refused(_) => code::CONNECTION_REFUSED,
            Refusal::Unreachable(_) => code::NETWORK_UNREACHABLE,
            Refusal::TimedOut => code::TTL_EXPIRED,
            Refusal::Failed(_) => code::FAILURE,
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> (u16, &'static str) {
        match self {
            Refusal::Denied(_) => (403, "Forbidden"),
            Refusal::TimedOut => (504, "Gateway Timeout"),
            _ => (502, "Bad Gateway"),
        }
    }

    /// The short fixed phrase the log and the metrics count it under.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Denied(_) => "destination denied",
            Refusal::NoSuchHost(_) => "destination does not resolve",
            Refusal::Refused(_) => "destination refused",
            Refusal::Unreachable(_) => "destination unreachable",
            Refusal::TimedOut => "destination timed out",
            Refusal::Failed(_) => "destination failed",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Denied(why) => write!(f, "denied: {why}"),
            Refusal::NoSuchHost(e) => write!(f, "cannot resolve: {e}"),
            Refusal::Refused(e) | Refusal::Unreachable(e) | Refusal::Failed(e) => f.write_str(e),
            Refusal::TimedOut => f.write_str("timed out"),
        }
    }
}

/// Connects to `host:port` as `rules` allow, each attempt within `wait`.
pub async fn open(
    rules: &Rules,
    host: &Host,
    port: u16,
    wait: Duration,
) -> Result<TcpStream, Refusal> {
    let (name, addrs) = match host {
        Host::Ip(ip) => (None, vec![SocketAddr::new(*ip, port)]),
        Host::Name(n) => {
            if let Some(v) = rules.decide_name(n, port)
                && v.action == Action::Deny
            {
                return Err(Refusal::Denied(v.why));
            }
            let found = tokio::time::timeout(wait, tokio::net::lookup_host((n.as_str(), port)))
                .await
                .map_err(|_| Refusal::TimedOut)?
                .map_err(|e| Refusal::NoSuchHost(e.to_string()))?;
            (Some(n.as_str()), found.collect())
        }
    };
    let mut denied = None;
    let mut tried = false;
    let mut last = Refusal::NoSuchHost("no address".into());
    for addr in addrs {
        let v = rules.decide(name, addr.ip(), port);
        if v.action == Action::Deny {
            denied.get_or_insert(v.why);
            continue;
        }
        tried = true;
        match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = from_io(&e),
            Err(_) => last = Refusal::TimedOut,
        }
    }
    // Where an address was allowed, its failure is the answer.
    Err(match denied {
        Some(why) if !tried => Refusal::Denied(why),
        _ => last,
    })
}

fn from_io(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Refusal::Refused(e.to_string()),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
            Refusal::Unreachable(e.to_string())
        }
        io::ErrorKind::TimedOut => Refusal::TimedOut,
        _ => Refusal::Failed(e.to_string()),
    }
}
