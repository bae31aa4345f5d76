//! TLS for the commands that speak it to other programs: `connect --tls` and `listen --tls`,
//! and the TLS ends of `forward`'s tunnels. rustls with ring underneath.
//!
//! A client verifies by default: the certificate chain against the system's roots (or
//! `--cacert`), and the host name. `--pin` trusts one key instead of the roots, `--insecure`
//! trusts anything, loudly ([`client`]). A server uses a PEM chain and key or a certificate
//! made at start ([`server`]). Every failure becomes one line that says why — expired, wrong
//! name, unknown issuer — ([`mod@explain`]), and `-v` can describe a session ([`describe`]).
use std::time::{Duration, SystemTime};

pub mod client;
pub mod describe;
pub mod explain;
pub mod pin;
pub mod server;

pub use client::{Client, ClientOptions};
pub use explain::explain;
pub use pin::Pin;
pub use server::{ServerOptions, server_config};

/// The ring crypto provider every TLS configuration here uses.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The host part of `HOST:PORT` (`[V6]:PORT` without its brackets), or the whole of `addr`
/// when it has no port: the name a client asks for and checks the certificate against.
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        return &rest[..end];
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host,
        _ => addr,
    }
}

/// A moment as people read it: `2027-01-31 12:00:00 UTC`.
pub fn human_time(unix: Duration) -> String {
    let secs = i64::try_from(unix.as_secs()).unwrap_or(i64::MAX);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => format!("{secs} s after 1970"),
    }
}

/// Seconds since 1970 now.
fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_names_v4_and_bracketed_v6() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn human_time_reads_as_utc() {
        assert_eq!(
            human_time(Duration::from_secs(0)),
            "1970-01-01 00:00:00 UTC"
        );
    }
}
