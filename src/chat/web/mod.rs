//! The chat in a browser (`taojie serve chat --web ADDR`): a page at `/` and a WebSocket at
//! `/ws` into the broker's rooms, so browser, nc and `taojie chat` users talk to each other.
//! The WebSocket carries the broker's line protocol, one text message per line each way.
//!
//! `http` answers requests (the page's files are in `page/`, built into the binary, nothing
//! fetched from elsewhere; who may open the WebSocket is [`crate::web::access`]'s to say),
//! and `relay` makes an open one a member of the broker.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::net::TcpListener;

use super::broker::Broker;
use crate::server::{self, Listener, LiveLimits};

mod http;
mod relay;

pub use crate::web::Token;

/// What the chat page's token is an HMAC of, under the broker's key.
pub const TOKEN_LABEL: &[u8] = b"taojie web token";

/// Default port of the chat page on `taojie serve`.
pub const DEFAULT_PORT: u16 = 9080;
/// Default seconds between pings to a quiet page: under the 60 s after which common proxies
/// (nginx's `proxy_read_timeout`) close a silent connection.
pub const DEFAULT_PING_SECS: f64 = 30.0;

/// What every web connection shares.
struct Web {
    /// The broker's rooms, with no authentication of its own: the token admitted the page.
    broker: Arc<Broker>,
    /// With a keyed broker, what a page must show to open the WebSocket.
    token: Option<Token>,
    /// Listening on loopback: only loopback host names are answered.
    loopback: bool,
    max_line: usize,
    /// How often a quiet page is pinged (see [`relay`]).
    ping: Duration,
}

/// Announces `listener` (`chat-web tcp ADDR`), says on stderr how to log in when the broker
/// has a key (and warns when the page is open to the network), and returns the server to
/// run until `shutdown`.
pub fn start(
    listener: TcpListener,
    broker: &Broker,
    ping: Duration,
    limits: LiveLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = ()> + Send + 'static> {
    let local = listener.local_addr()?;
    let token = broker
        .auth
        .as_deref()
        .and_then(|a| Token::from_auth(a, TOKEN_LABEL));
    server::announce("chat-web", "tcp", &local);
    crate::web::announce("chat-web", "chat", "the chat", local, token.as_ref());
    let web = Arc::new(Web {
        broker: Arc::new(Broker {
            auth: None,
            ..broker.clone()
        }),
        token,
        loopback: local.ip().is_loopback(),
        max_line: broker.max_line,
        ping,
    });
    Ok(server::serve_stream(
        "chat-web",
        Listener::Tcp(listener),
        limits,
        move |conn| http::connection(conn, web.clone()),
        shutdown,
    ))
}
