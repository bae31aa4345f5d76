//! Starting what a configuration names: the log level, keys and roots created when missing
//! (as `taojie serve` with no service does), every service at once, and the SIGHUP reload.
use std::os::unix::fs::DirBuilderExt;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use super::{Config, Section};
use crate::serve::{Live, Running, Service};
use crate::server::{LiveCaps, LiveLimits};

/// Runs every service `config` names until `shutdown` is cancelled, re-reading the file on
/// SIGHUP. The first service that fails to start (a taken port, a bad key file) stops all.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<()> {
    if let Some(level) = &config.log_level {
        if std::env::var_os("RUST_LOG").is_some() {
            tracing::info!("RUST_LOG is set: it wins over log-level in the configuration");
        } else {
            crate::log::level::set(level)?;
        }
    }
    let mut live = super::reload::LiveSenders::new();
    let mut running: Vec<Running> = Vec::new();
    for section in &config.sections {
        prepare(section)?;
        let service = section.service(&config.path)?;
        let (follows, senders) = follow(&service);
        live.insert(section.name, senders);
        running.push(service.serve(follows, shutdown.clone()));
    }
    for f in &config.forwards {
        let options = f.options(&config.path)?;
        let stop = shutdown.clone().cancelled_owned();
        running.push(Box::pin(crate::forward::run(options, stop)));
    }
    // Before any service is up: from now on SIGHUP re-reads instead of ending the process.
    super::reload::on_sighup(config, live)?;
    futures_util::future::try_join_all(running).await?;
    Ok(())
}

/// Creates the section's key (mode 600) and files root (mode 700) when missing, saying so.
fn prepare(section: &Section) -> Result<()> {
    if let Some(key) = section.path("key") {
        let (_, created) = crate::auth::load_or_create(&key)?;
        if created {
            eprintln!(
                "taojie: created a new key at {} (mode 600) for {}; clients use it with --key",
                key.display(),
                section.name
            );
        }
    }
    if let Some(root) = section.path("root")
        && !root.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .with_context(|| format!("cannot create the files root {}", root.display()))?;
        eprintln!("taojie: created the files root {}", root.display());
    }
    Ok(())
}

/// `service`'s live limits and caps, starting at its flags', and the senders that change them.
fn follow(service: &Service) -> (Live, super::reload::Senders) {
    let mut live = Live::default();
    let mut senders = super::reload::Senders::default();
    if let Some(limits) = service.limits() {
        let (tx, rx) = LiveLimits::channel(limits);
        (senders.limits, live.limits) = (Some(tx), Some(rx));
    }
    if let Some(caps) = service.caps() {
        let (tx, rx) = LiveCaps::channel(caps);
        (senders.caps, live.caps) = (Some(tx), Some(rx));
    }
    (live, senders)
}
