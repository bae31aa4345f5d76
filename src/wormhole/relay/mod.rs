//! `taojie serve relay`: a Magic Wormhole mailbox server (WebSocket, `ws://ADDR/v1`) and a
//! transit relay in one process, so a team or a classroom runs its own rendezvous; any
//! wormhole client pointed at it works. State lives in memory: channels nobody listens to
//! expire after `channel_expiry`.
pub mod hub;
pub mod mailbox;
pub mod transit;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::server::{self, Limits, Listener};
pub use hub::Hub;
pub use transit::Pairing;

/// Bounds on what the mailbox server holds.
#[derive(Debug, Clone)]
pub struct HubLimits {
    /// Channels (mailboxes) one client address may hold at once.
    pub channels_per_client: usize,
    /// Messages one mailbox may hold.
    pub mailbox_messages: usize,
    /// Bytes one mailbox may hold.
    pub mailbox_bytes: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            channels_per_client: 100,
            mailbox_messages: 128,
            mailbox_bytes: 4 << 20,
        }
    }
}

/// The relay's options.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The mailbox server's connection limits.
    pub mailbox_limits: Limits,
    /// The transit relay's connection limits.
    pub transit_limits: Limits,
    /// What the mailbox holds.
    pub hub: HubLimits,
    /// How long an unattended channel lives.
    pub channel_expiry: Duration,
    /// Bytes relayed each way per transit pair (none: no limit).
    pub max_transit_bytes: Option<u64>,
    /// The message of the day in every welcome.
    pub motd: Option<String>,
}

/// What `relay::serve` runs: where the mailbox server and the transit relay listen, and the
/// relay's limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the mailbox server listens (clients use `ws://ADDR/v1`).
    pub listen: String,
    /// Where the transit relay listens (none: mailbox only).
    pub transit: Option<String>,
    /// Limits, expiry, the message of the day.
    pub relay: RelayOptions,
}

/// Binds the mailbox server and the transit relay `opts` names, says where they listen
/// (`relay tcp ADDR`, `relay-transit tcp ADDR`) and serves them until `shutdown` is
/// cancelled.
pub async fn serve(
    opts: ServeOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<()> {
    let mailbox = server::listen_tcp(&opts.listen).await?;
    server::announce("relay", mailbox.proto(), &mailbox.local_display());
    let transit = match &opts.transit {
        Some(addr) => {
            let l = server::listen_tcp(addr).await?;
            server::announce("relay-transit", l.proto(), &l.local_display());
            Some(l)
        }
        None => None,
    };
    run(mailbox, transit, opts.relay, shutdown).await
}

/// Serves the mailbox on `mailbox` and (if given) the transit relay on `transit` until
/// `shutdown` resolves.
pub async fn run(
    mailbox: Listener,
    transit: Option<Listener>,
    opts: RelayOptions,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<()> {
    let hub = Hub::new(opts.hub.clone());
    let motd: Option<Arc<str>> = opts.motd.as_deref().map(Arc::from);
    let pruner = {
        let (hub, token, expiry) = (hub.clone(), shutdown.clone(), opts.channel_expiry);
        tokio::spawn(async move {
            let every = (expiry / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(every) => {
                        let n = hub.prune(expiry);
                        if n > 0 {
                            tracing::info!(mailboxes = n, "expired idle channels");
                        }
                    }
                }
            }
        })
    };
    let mailbox_task = {
        let (hub, motd) = (hub.clone(), motd.clone());
        let stop = shutdown.clone().cancelled_owned();
        server::serve_stream(
            "relay",
            mailbox,
            opts.mailbox_limits,
            move |conn| mailbox::serve(conn, hub.clone(), motd.clone()),
            stop,
        )
    };
    let transit_task = async {
        if let Some(listener) = transit {
            let pairing = Arc::new(Pairing::default());
            let max = opts.max_transit_bytes;
            server::serve_stream(
                "relay-transit",
                listener,
                opts.transit_limits,
                move |conn| pairing.clone().serve(conn, max),
                shutdown.clone().cancelled_owned(),
            )
            .await;
        }
    };
    tokio::join!(mailbox_task, transit_task);
    let _ = pruner.await;
    Ok(())
}
