//! What `forward`'s LISTEN and TARGET say: `HOST:PORT` (TCP; `tcp:` may be written),
//! `udp:HOST:PORT`, or `unix:PATH`. A LISTEN that is only a port (`8080` or `:8080`) is on
//! loopback: listening beyond it is an explicit choice.
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::transport::Target;

/// One side of a forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP, `HOST:PORT`.
    Tcp(String),
    /// UDP, `HOST:PORT`.
    Udp(String),
    /// A Unix-domain stream socket.
    Unix(PathBuf),
}

impl Endpoint {
    /// The endpoint as a listen address: a bare port means loopback.
    pub fn listen(s: &str) -> Result<Endpoint, String> {
        let port_only = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let local = |p: &str| format!("127.0.0.1:{p}");
        match s.parse()? {
            Endpoint::Tcp(a) if port_only(&a) => Ok(Endpoint::Tcp(local(&a))),
            Endpoint::Tcp(a) if a.starts_with(':') && port_only(&a[1..]) => {
                Ok(Endpoint::Tcp(local(&a[1..])))
            }
            Endpoint::Udp(a) if port_only(&a) => Ok(Endpoint::Udp(local(&a))),
            Endpoint::Udp(a) if a.starts_with(':') && port_only(&a[1..]) => {
                Ok(Endpoint::Udp(local(&a[1..])))
            }
            e => e.check(),
        }
    }

    /// The endpoint as a target.
    pub fn target(s: &str) -> Result<Endpoint, String> {
        s.parse::<Endpoint>()?.check()
    }

    fn check(self) -> Result<Endpoint, String> {
        match &self {
            // The one address parser every flag shares, and its sentence.
            Endpoint::Tcp(a) | Endpoint::Udp(a) => match crate::addr::parse(a) {
                Ok(_) => Ok(self),
                Err(e) => Err(e.to_string()),
            },
            Endpoint::Unix(p) if p.as_os_str().is_empty() => {
                Err("unix: needs a path (unix:/run/app.sock)".into())
            }
            _ => Ok(self),
        }
    }

    /// Where a stream goes, for a stream endpoint.
    pub fn stream_target(&self) -> Option<Target> {
        match self {
            Endpoint::Tcp(a) => Some(Target::Tcp(a.clone())),
            Endpoint::Unix(p) => Some(Target::Unix(p.clone())),
            Endpoint::Udp(_) => None,
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        if let Some(rest) = s.strip_prefix("udp:") {
            Ok(Endpoint::Udp(rest.to_string()))
        } else if let Some(rest) = s.strip_prefix("unix:") {
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        } else if let Some(rest) = s.strip_prefix("tcp:") {
            Ok(Endpoint::Tcp(rest.to_string()))
        } else {
            Ok(Endpoint::Tcp(s.to_string()))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => f.write_str(a),
            Endpoint::Udp(a) => write!(f, "udp:{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses() {
        let t = |s: &str| Endpoint::target(s).unwrap();
        assert_eq!(t("example.com:80"), Endpoint::Tcp("example.com:80".into()));
        assert_eq!(t("tcp:[::1]:80"), Endpoint::Tcp("[::1]:80".into()));
        assert_eq!(t("udp:127.0.0.1:53"), Endpoint::Udp("127.0.0.1:53".into()));
        assert_eq!(t("unix:/run/d.sock"), Endpoint::Unix("/run/d.sock".into()));
    }

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        let l = |s: &str| Endpoint::listen(s).unwrap();
        assert_eq!(l("8080"), Endpoint::Tcp("127.0.0.1:8080".into()));
        assert_eq!(l(":8080"), Endpoint::Tcp("127.0.0.1:8080".into()));
        assert_eq!(l("udp:5353"), Endpoint::Udp("127.0.0.1:5353".into()));
        assert_eq!(l("0.0.0.0:8080"), Endpoint::Tcp("0.0.0.0:8080".into()));
        // As a target, a port alone names no host.
        assert!(Endpoint::target("8080").is_err());
    }

    #[test]
    fn bad_forms_say_what_is_expected() {
        assert!(Endpoint::target("unix:").unwrap_err().contains("path"));
        assert!(
            Endpoint::target("udp:nowhere")
                .unwrap_err()
                .contains("HOST:PORT")
        );
    }
}
