//! Time services and their client: the seed's UDP strftime server, daytime over TCP (RFC 867)
//! and SNTP (RFC 4330).
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::cli::LimitArgs;

/// Flags of `taojie serve time`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// UDP address of the strftime service (a datagram holds a format, the answer the time)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// TCP address of the daytime service (RFC 867)
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    /// UDP address of the SNTP service (RFC 4330)
    #[arg(long, value_name = "ADDR")]
    pub sntp: Option<String>,
    /// Connection limits (daytime)
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Flags of `taojie time`.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Server address, HOST:PORT
    pub addr: String,
    /// strftime format to ask for (default: the server's, `%Y-%m-%d %X`)
    pub format: Option<String>,
    /// Ask a daytime server over TCP (RFC 867)
    #[arg(long, conflicts_with = "sntp")]
    pub tcp: bool,
    /// Ask an SNTP/NTP server; prints the time, the clock offset and the round-trip delay
    #[arg(long)]
    pub sntp: bool,
}

/// Runs the time services `args` names until `shutdown` is cancelled.
pub async fn serve(_args: ServeArgs, _shutdown: CancellationToken) -> Result<()> {
    bail!("the time service is not built yet")
}

/// `taojie time`: asks a server and prints the answer.
pub async fn client(_args: ClientArgs) -> Result<ExitCode> {
    bail!("the time client is not built yet")
}
