//! `taojie serve` with no service: every service on its default port on 127.0.0.1.
use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::cli::LimitArgs;
use crate::{echo, time};

/// Runs every service on 127.0.0.1 at its default ports until `shutdown` is cancelled.
pub async fn all(limits: LimitArgs, shutdown: CancellationToken) -> Result<()> {
    let echo_args = echo::EchoArgs {
        limits: limits.clone(),
        ..Default::default()
    };
    let time_args = time::ServeArgs {
        limits,
        ..Default::default()
    };
    tokio::try_join!(
        echo::run(echo_args, shutdown.clone()),
        time::serve(time_args, shutdown)
    )?;
    Ok(())
}
