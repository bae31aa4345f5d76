//! `taojie serve proxy`: SOCKS5 (RFC 1928, with RFC 1929 username and password) and HTTP/1.1
//! `CONNECT` on one port, told apart by the first byte (5 for SOCKS, a letter for HTTP), and
//! plain HTTP requests for `http://` URLs, passed on one per connection (`plain.rs`). A
//! connection's request is read and its user checked (`socks.rs`, `http.rs`) under the server
//! framework's handshake caps and deadline; the destination is checked against the
//! [`rules`] and opened ([`target`]); then the bytes are relayed both ways by the relay
//! engine `forward` uses (`pump`: splice(2) between the two sockets, half-close carried
//! across) until both sides have ended, and one line logs the connection. SOCKS5's UDP
//! ASSOCIATE relays datagrams instead ([`udp`]), each destination checked the same way.
//!
//! Users come from a file of Argon2id hashes ([`users`]); with a users file every client must
//! log in, by SOCKS5's username/password or HTTP's `Proxy-Authorization: Basic`.
use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::proxy_wire::http_connect::{self, HeadError, MAX_HEAD};
use crate::proxy_wire::socks5::{self, WireError};
use crate::proxy_wire::{Host, Parsed};
use crate::pump::{self, Session};
use crate::server::{self, Conn, LiveCaps, LiveLimits, PreAuth};
use crate::transport::{Plain, Stream};

mod http;
mod per_user;
mod plain;
pub mod rules;
mod socks;
pub mod target;
pub mod udp;
pub mod users;

pub use rules::{Action, Rule, Rules};
pub use users::Users;

use per_user::PerUser;

/// The service's name in address lines, logs and metrics.
pub const SERVICE: &str = "proxy";

/// What `proxy::serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The TCP address to listen on.
    pub listen: String,
    /// `--allow` and `--deny` in the order given.
    pub rules: Vec<Rule>,
    /// The users file; none: no login asked.
    pub users: Option<std::path::PathBuf>,
    /// Connections at once per user (0: no cap beyond the listener's).
    pub max_conns_per_user: usize,
    /// How long resolving and connecting to a destination may take.
    pub connect_timeout: Duration,
    /// Connection limits.
    pub limits: LiveLimits,
    /// Caps on connections still in their request (or login).
    pub preauth: LiveCaps,
}

/// What the whole service shares.
struct Ctx {
    rules: Rules,
    users: Option<Users>,
    preauth: PreAuth,
    connect_timeout: Duration,
    per_user: PerUser,
}

/// Serves the proxy on `o.listen` until `shutdown` is cancelled.
pub async fn serve(o: ServeOptions, shutdown: CancellationToken) -> Result<()> {
    let users = o.users.as_deref().map(Users::load).transpose()?;
    let listener = server::listen_tcp(&o.listen).await?;
    server::announce(SERVICE, listener.proto(), &listener.local_display());
    let ctx = Arc::new(Ctx {
        rules: Rules::new(o.rules),
        users,
        preauth: PreAuth::live(o.preauth).for_service(SERVICE),
        connect_timeout: o.connect_timeout,
        per_user: PerUser::new(o.max_conns_per_user),
    });
    server::serve_stream(
        SERVICE,
        listener,
        o.limits,
        move |conn| handle(conn, ctx.clone()),
        shutdown.cancelled_owned(),
    )
    .await;
    Ok(())
}

/// What a client asked for, once it has logged in.
#[derive(Debug)]
pub(crate) struct Asked {
    host: Host,
    port: u16,
    user: Option<String>,
    /// SOCKS5 UDP ASSOCIATE rather than CONNECT.
    udp: bool,
    /// A plain HTTP request rather than CONNECT: its head as the target gets it.
    forward: Option<Vec<u8>>,
    /// The plain request's body length (what follows its head for the target).
    body: u64,
}

/// Why a connection's request was not served (each answered on the wire already, where the
/// protocol has an answer for it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the connection ended inside a request")]
    Truncated,
    #[error("first byte {0:#04x}: neither SOCKS5 nor HTTP")]
    Protocol(u8),
    #[error("{0}")]
    Socks(#[from] WireError),
    #[error("{0}")]
    Http(#[from] HeadError),
    #[error("{0}")]
    Auth(String),
    #[error("SOCKS command {0} not supported")]
    Unsupported(String),
    #[error("user {0:?} has {1} connections open, the most allowed")]
    UserCap(String, usize),
}

impl Failure {
    fn kind(&self) -> &'static str {
        match self {
            Failure::Io(_) | Failure::Truncated => "request cut short",
            Failure::Protocol(_) | Failure::Socks(_) | Failure::Http(_) => "bad request",
            Failure::Auth(_) => "login refused",
            Failure::Unsupported(_) => "command not supported",
            Failure::UserCap(..) => "user connection cap",
        }
    }
}

/// Bytes read from a client and not yet parsed: a request's, then the tunnel's.
pub(crate) struct Inbox(Vec<u8>);

impl Inbox {
    /// Reads until `parse` has a whole message, which it takes off the front.
    async fn next<T, E: Into<Failure>>(
        &mut self,
        conn: &mut Conn,
        parse: impl Fn(&[u8]) -> Result<Parsed<T>, E>,
    ) -> Result<T, Failure> {
        loop {
            match parse(&self.0).map_err(Into::into)? {
                Parsed::Done(t, n) => {
                    self.0.drain(..n);
                    return Ok(t);
                }
                // The parsers refuse more than MAX_HEAD themselves; this is a backstop.
                Parsed::Incomplete if self.0.len() > MAX_HEAD => {
                    return Err(HeadError::TooLarge.into());
                }
                Parsed::Incomplete => {
                    self.0.reserve(1024);
                    if conn.read_buf(&mut self.0).await? == 0 {
                        return Err(Failure::Truncated);
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Socks,
    Http,
}

async fn handle(mut conn: Conn, ctx: Arc<Ctx>) -> io::Result<()> {
    let peer = conn.peer().clone();
    let meter = crate::metrics::service(SERVICE);
    let mut inbox = Inbox(Vec::with_capacity(512));
    let request = ctx
        .preauth
        .run(&peer, request(&mut conn, &mut inbox, &ctx))
        .await;
    let (protocol, asked) = match request {
        Err(cut) => {
            meter.proxied("-", "request too slow");
            server::refused(SERVICE, "request too slow", &peer, &cut);
            return Ok(());
        }
        Ok(Err(e)) => {
            if matches!(e, Failure::Auth(_)) {
                crate::metrics::service(SERVICE).auth_failures.inc();
            }
            meter.proxied("-", e.kind());
            server::refused(SERVICE, e.kind(), &peer, &e);
            return Ok(());
        }
        Ok(Ok(r)) => r,
    };
    let who = asked.user.clone().unwrap_or_else(|| "-".into());
    let _slot = match ctx.per_user.take(asked.user.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            meter.proxied(&who, e.kind());
            answer_refusal(&mut conn, protocol, &target::Refusal::Failed(e.to_string())).await;
            server::refused(SERVICE, e.kind(), &peer, &e);
            return Ok(());
        }
    };
    if asked.udp {
        meter.proxied(&who, "udp associated");
        return udp::associate(conn, asked, &ctx.rules, ctx.connect_timeout).await;
    }
    let Asked {
        host,
        port,
        user,
        forward,
        body,
        ..
    } = asked;
    let dest = format!("{host}:{port}");
    let mut upstream = match target::open(&ctx.rules, &host, port, ctx.connect_timeout).await {
        Ok(s) => s,
        Err(refusal) => {
            meter.proxied(&who, refusal.kind());
            answer_refusal(&mut conn, protocol, &refusal).await;
            let why = format!("{dest}: {refusal}");
            server::refused(SERVICE, refusal.kind(), &peer, &why);
            return Ok(());
        }
    };
    let user = user.unwrap_or_else(|| "-".into());
    // A plain request goes on with its body, and its answer comes back (plain.rs).
    if let Some(head) = forward {
        let early = std::mem::take(&mut inbox.0);
        let exchanged = async move {
            let mut tally = Tally {
                who,
                session: Session::new(SERVICE, &peer, &dest),
            };
            let res =
                plain::exchange(conn, upstream, head, early, body, &tally.session.totals).await;
            tally.session.relayed(res);
        };
        exchanged
            .instrument(info_span!("proxy", user = %user))
            .await;
        return Ok(());
    }
    // A tunnel is answered, then relayed.
    let mut first = match protocol {
        Protocol::Socks => {
            let ok = socks5::reply(socks5::code::SUCCEEDED, upstream.local_addr().ok());
            conn.write_all(&ok).await?;
            Vec::new()
        }
        Protocol::Http => {
            let ok = http_connect::response(200, "Connection established", &[]);
            conn.write_all(&ok).await?;
            Vec::new()
        }
    };
    // What the client sent after its request goes to the target first.
    first.extend_from_slice(&inbox.0);
    upstream.write_all(&first).await?;
    let relayed = async move {
        // The one log line per connection is the session's, and the metrics are the
        // tally's, both written when they drop: also when the idle timeout or the shutdown
        // deadline drops this future in the middle of the relay.
        let mut tally = Tally {
            who,
            session: Session::new(SERVICE, &peer, &dest),
        };
        tally
            .session
            .totals
            .up
            .fetch_add(first.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let client = Stream::Plain(Plain::Conn(conn));
        let target = Stream::Plain(Plain::Tcp(upstream));
        let res = pump::relay(client, target, &tally.session.totals).await;
        tally.session.relayed(res);
    };
    relayed.instrument(info_span!("proxy", user = %user)).await;
    Ok(())
}

/// A relayed connection's count in the per-user metrics, taken when it drops, however the
/// relay ended.
struct Tally {
    who: String,
    session: Session,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let meter = crate::metrics::service(SERVICE);
        let (up, down) = self.session.totals.get();
        meter.proxied(&self.who, "relayed");
        meter.proxied_bytes(&self.who, up, down);
    }
}

/// Reads the request and logs the user in; the protocol is the first byte's.
async fn request(
    conn: &mut Conn,
    inbox: &mut Inbox,
    ctx: &Ctx,
) -> Result<(Protocol, Asked), Failure> {
    let first = inbox
        .next(conn, |b: &[u8]| {
            Ok::<_, Failure>(match b.first() {
                Some(&f) => Parsed::Done(f, 0),
                None => Parsed::Incomplete,
            })
        })
        .await?;
    let users = ctx.users.as_ref();
    match first {
        socks5::VERSION => Ok((Protocol::Socks, socks::negotiate(conn, inbox, users).await?)),
        b'A'..=b'Z' | b'a'..=b'z' => {
            Ok((Protocol::Http, http::negotiate(conn, inbox, users).await?))
        }
        other => Err(Failure::Protocol(other)),
    }
}

async fn answer_refusal(conn: &mut Conn, protocol: Protocol, refusal: &target::Refusal) {
    let bytes = match protocol {
        Protocol::Socks => socks5::reply(refusal.socks_code(), None),
        Protocol::Http => {
            let (code, reason) = refusal.http_status();
            http_connect::response(code, reason, &[])
        }
    };
    // The client may be gone; there is nothing more to tell it either way.
    let _ = conn.write_all(&bytes).await;
    let _ = conn.shutdown().await;
}
