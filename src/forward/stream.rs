//! Forwarding stream connections (TCP and Unix): each accepted client goes through the
//! listening side's handshake, if any (under the pre-authentication limits), then gets its
//! own connection to the target, then the two are relayed. One log line per relayed
//! connection ([`Session`]); a failed handshake is logged by the guard, summarised in floods.
use std::future::Future;
use std::io;
use std::sync::Arc;

use anyhow::Result;

use super::{Endpoint, Options};
use crate::pump::{self, Session};
use crate::server::{self, Conn, PreAuth};
use crate::transport::{Accept, Dial, Plain, Stream};

/// What every connection's task shares.
struct Shared {
    service: &'static str,
    accept: Accept,
    guard: PreAuth,
    dial: Dial,
}

/// Binds LISTEN, announces it, and serves until `shutdown`.
pub(super) async fn run(
    opts: &Options,
    accept: Accept,
    dial: Dial,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let listener = match &opts.listen {
        Endpoint::Tcp(a) => server::listen_tcp(a).await?,
        Endpoint::Unix(p) => server::bind_unix(p)?,
        Endpoint::Udp(_) => unreachable!("udp is served by forward::udp"),
    };
    server::announce(opts.service, listener.proto(), &listener.local_display());
    let caps = opts.preauth;
    let shared = Arc::new(Shared {
        service: opts.service,
        accept,
        guard: PreAuth::new(caps.max_total, caps.max_per_addr, caps.deadline)
            .for_service(opts.service),
        dial,
    });
    let handler = move |conn: Conn| handle(conn, shared.clone());
    server::serve_stream(
        opts.service,
        listener,
        opts.limits.clone(),
        handler,
        shutdown,
    )
    .await;
    Ok(())
}

/// One client: handshake, connect, relay, log.
async fn handle(conn: Conn, shared: Arc<Shared>) -> io::Result<()> {
    let peer = conn.peer().clone();
    let client = if shared.accept.has_handshake() {
        let handshake = shared.accept.handshake(Plain::Conn(conn));
        match shared
            .guard
            .handshake(&peer, "handshake refused", handshake)
            .await
        {
            Some(stream) => stream,
            None => return Ok(()),
        }
    } else {
        Stream::Plain(Plain::Conn(conn))
    };
    let mut session = Session::new(shared.service, &peer, &shared.dial.target);
    let target = match shared.dial.connect().await {
        Ok(t) => t,
        Err(e) => {
            // The client's socket closes as `client` drops: a prompt end, not a hang.
            session.refused(format!("{e:#}"));
            return Ok(());
        }
    };
    let relayed = pump::relay(client, target, &session.totals).await;
    session.relayed(relayed);
    Ok(())
}
