//! The flags of `taojie serve relay` (a Magic Wormhole mailbox server and transit relay), and
//! starting it.
use anyhow::Result;
use clap::Args;

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
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Where the transit relay listens (none: mailbox only)
    #[arg(long, value_name = "ADDR")]
    pub transit: Option<String>,
    /// Connections served at once, mailbox and transit each
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub max_conns: usize,
    /// Close a mailbox connection that moves no byte for this many seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 3600.0, value_parser = non_negative)]
    pub idle_timeout: f64,
    /// Close a transit connection (waiting or relaying) idle this many seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 300.0, value_parser = non_negative)]
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

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1e9).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0")),
    }
}

/// Runs `taojie serve relay` until `token` is cancelled.
pub async fn serve_relay(
    args: RelayArgs,
    token: tokio_util::sync::CancellationToken,
) -> Result<()> {
    use crate::server::{Limits, announce, listen_tcp};
    let secs = |s: f64| (s > 0.0).then(|| std::time::Duration::from_secs_f64(s));
    let mailbox = listen_tcp(&args.listen).await?;
    announce("relay", mailbox.proto(), &mailbox.local_display());
    let transit = match &args.transit {
        Some(addr) => {
            let l = listen_tcp(addr).await?;
            announce("relay-transit", l.proto(), &l.local_display());
            Some(l)
        }
        None => None,
    };
    let limits = |idle: f64| Limits {
        max_conns: args.max_conns.max(1),
        idle_timeout: secs(idle),
        grace: std::time::Duration::from_secs(2),
    };
    let opts = crate::relay::RelayOptions {
        mailbox_limits: limits(args.idle_timeout),
        transit_limits: limits(args.transit_idle_timeout),
        hub: crate::relay::HubLimits {
            channels_per_client: args.max_channels_per_client.max(1),
            ..Default::default()
        },
        channel_expiry: std::time::Duration::from_secs_f64(args.channel_expiry),
        max_transit_bytes: (args.max_transit_bytes > 0).then_some(args.max_transit_bytes),
        motd: args.motd,
    };
    crate::relay::run(mailbox, transit, opts, token).await
}
