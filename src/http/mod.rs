//! `taojie http`: an HTTP/1.1 and HTTPS client, and the seed's raw-socket way with `--raw`.
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

/// Flags of `taojie http`.
#[derive(Args, Debug)]
pub struct HttpArgs {
    /// The URL to fetch
    pub url: String,
}

/// Runs `taojie http`.
pub async fn run(_args: HttpArgs) -> Result<ExitCode> {
    anyhow::bail!("http is not built yet")
}
