//! Netcat: `taojie connect` and `taojie listen` over TCP, UDP and Unix sockets.
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

/// Flags of `taojie connect`.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Where to connect: HOST:PORT, or a socket path with --unix
    pub addr: String,
    /// Use UDP: each chunk read from stdin is one datagram
    #[arg(long, short = 'u', conflicts_with = "unix")]
    pub udp: bool,
    /// Connect to a Unix-domain stream socket at the path ADDR
    #[arg(long, short = 'U')]
    pub unix: bool,
}

/// Flags of `taojie listen`.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Where to listen: HOST:PORT (port 0 picks one), or a socket path with --unix
    pub addr: String,
    /// Use UDP
    #[arg(long, short = 'u', conflicts_with = "unix")]
    pub udp: bool,
    /// Listen on a Unix-domain stream socket at the path ADDR
    #[arg(long, short = 'U')]
    pub unix: bool,
    /// After a peer leaves, wait for the next one instead of exiting
    #[arg(long, short = 'k')]
    pub keep_open: bool,
}

/// `taojie connect`.
pub async fn connect(_args: ConnectArgs) -> Result<ExitCode> {
    bail!("connect is not built yet")
}

/// `taojie listen`.
pub async fn listen(_args: ListenArgs) -> Result<ExitCode> {
    bail!("listen is not built yet")
}
