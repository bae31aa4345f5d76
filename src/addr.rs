//! Address parsing: `HOST:PORT`, `[V6]:PORT` and names that resolve, as users type them.
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};

/// Resolves `HOST:PORT` (an IPv4 or bracketed IPv6 literal, or a name) to every address it
/// names, in the resolver's order.
pub async fn resolve(addr: &str) -> Result<Vec<SocketAddr>> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    if !addr.contains(':') {
        bail!("bad address {addr:?}: expected HOST:PORT, e.g. 127.0.0.1:9007 or [::1]:9007");
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve {addr:?}"))?
        .collect();
    if found.is_empty() {
        bail!("{addr:?} resolves to no address");
    }
    Ok(found)
}

/// Resolves `HOST:PORT` to the one address a server binds: the first the resolver gives.
pub async fn resolve_one(addr: &str) -> Result<SocketAddr> {
    Ok(resolve(addr).await?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_parse_without_lookup() {
        assert_eq!(resolve_one("127.0.0.1:7").await.unwrap().port(), 7);
        assert!(resolve_one("[::1]:0").await.unwrap().is_ipv6());
        assert!(resolve_one("localhost:9").await.is_ok());
    }

    #[tokio::test]
    async fn missing_port_is_a_clear_error() {
        let err = resolve("127.0.0.1").await.unwrap_err().to_string();
        assert!(err.contains("HOST:PORT"), "{err}");
    }
}
