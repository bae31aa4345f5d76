//! `taojie bench`: an echo load generator that verifies every byte that comes back.
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

/// Flags of `taojie bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Echo server address, HOST:PORT
    pub addr: String,
}

/// Runs the benchmark and prints its figures.
pub async fn run(_args: BenchArgs) -> Result<ExitCode> {
    bail!("bench is not built yet")
}
