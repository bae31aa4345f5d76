//! `taojie ipcalc`: addresses, masks and subnets, as seeds 002 and 004 explain them.
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

/// Flags of `taojie ipcalc`.
#[derive(Args, Debug)]
pub struct IpcalcArgs {
    /// ADDR[/PREFIX], and optionally a second address to compare
    #[arg(num_args = 1..=2, required = true)]
    pub addrs: Vec<String>,
}

/// Runs `taojie ipcalc`.
pub fn run(_args: IpcalcArgs) -> Result<ExitCode> {
    anyhow::bail!("ipcalc is not built yet")
}
