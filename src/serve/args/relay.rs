//! The flags of `taojie serve relay`, and the relay's options they make.
use std::time::Duration;

use clap::Args;

use crate::server::Limits;
use crate::wormhole::relay::{self, HubLimits, RelayOptions};

/// `taojie serve relay --listen ADDR --transit ADDR`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  taojie serve relay --listen 0.0.0.0:4000 --transit 0.0.0.0:4001
  taojie send FILE --relay-url ws://HOST:4000/v1 --transit-helper tcp:HOST:4001
  wormhole --relay-url ws://HOST:4000/v1 --transit-helper tcp:HOST:4001 receive CODE

Prints `relay tcp ADDR` and `relay-transit tcp ADDR` once listening. Channels live in memory;
one nobody has used for --channel-expiry seconds goes. In `taojie serve --config FILE`, a
[relay] section runs it, its keys these flags (listen = \"127.0.0.1:4000\", channel-expiry = 600).")]
pub struct RelayArgs {
    /// Where the mailbox server listens (clients use ws://ADDR/v1)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub listen: String,
    /// Where the transit relay listens (none: mailbox only)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::host_port)]
    pub transit: Option<String>,
    /// Connections served at once, mailbox and transit each
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_conns: usize,
    /// Close a mailbox connection that moves no byte for this many seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 3600.0, value_parser = crate::flags::secs)]
    pub idle_timeout: f64,
    /// Close a transit connection (waiting or relaying) idle this many seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 300.0, value_parser = crate::flags::secs)]
    pub transit_idle_timeout: f64,
    /// Remove a channel nobody is connected to after this many idle seconds
    #[arg(long, value_name = "SECS", default_value_t = 3600.0, value_parser = crate::flags::positive_secs)]
    pub channel_expiry: f64,
    /// Channels one client address may hold at once
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_channels_per_client: usize,
    /// Bytes relayed each way per transit pair (0: no limit)
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub max_transit_bytes: u64,
    /// A message of the day sent to every client
    #[arg(long, value_name = "TEXT")]
    pub motd: Option<String>,
}

impl From<RelayArgs> for relay::ServeOptions {
    fn from(a: RelayArgs) -> Self {
        let secs = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s));
        let limits = |idle: f64| Limits {
            max_conns: a.max_conns.max(1),
            idle_timeout: secs(idle),
            grace: Duration::from_secs(2),
        };
        relay::ServeOptions {
            listen: a.listen,
            transit: a.transit,
            relay: RelayOptions {
                mailbox_limits: limits(a.idle_timeout),
                transit_limits: limits(a.transit_idle_timeout),
                hub: HubLimits {
                    channels_per_client: a.max_channels_per_client.max(1),
                    ..Default::default()
                },
                channel_expiry: Duration::from_secs_f64(a.channel_expiry),
                max_transit_bytes: (a.max_transit_bytes > 0).then_some(a.max_transit_bytes),
                motd: a.motd,
            },
        }
    }
}
