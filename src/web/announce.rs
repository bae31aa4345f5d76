//! What a page's server says once it listens: the URL to open (with the login token, as
//! Jupyter prints one) and, when it is reachable from the network, a warning about what that
//! exposes.
use std::net::{Ipv6Addr, SocketAddr};

use tracing::warn;

use super::Token;

/// Prints `SERVICE login http://ADDR/?token=…` (or `SERVICE page http://ADDR/` without a
/// token) on stderr, an unspecified address shown as loopback, and warns when `local` is not
/// loopback. `page` names the page and `content` what it shows, in the warnings ("chat",
/// "the chat").
pub fn announce(
    service: &str,
    page: &str,
    content: &str,
    local: SocketAddr,
    token: Option<&Token>,
) {
    let shown = match local.ip() {
        ip if ip.is_unspecified() && local.is_ipv4() => {
            SocketAddr::new([127, 0, 0, 1].into(), local.port())
        }
        ip if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port()),
        _ => local,
    };
    match token {
        Some(t) => eprintln!("{service} login http://{shown}/?token={}", t.hex()),
        None => eprintln!("{service} page http://{shown}/"),
    }
    if local.ip().is_loopback() {
        return;
    }
    if token.is_none() {
        warn!(%local, "{page} page open to anyone who can reach it (no --key)");
    } else {
        warn!(
            %local,
            "{page} page served over plain HTTP: the token keeps others out, but anyone on the \
             network path can read {content} and the token; put it behind TLS"
        );
    }
}
