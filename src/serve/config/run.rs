//! Starting what a configuration names: the log level, keys and roots created when missing
//! (as `taojie serve` with no service does), every service at once, and the SIGHUP reload.
use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::pin::Pin;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Config, Section};
use crate::serve::Service;
use crate::server::{Caps, Limits, LiveLimits};
use crate::{chat, echo, exec, files, time};

/// A service running until its shutdown token is cancelled.
type Running = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

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
        let (service, senders) = with_live_limits(section.service(&config.path)?);
        live.insert(section.name, senders);
        running.push(start(service, shutdown.clone()));
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

/// The connection limits `service`'s flags ask for; exec has none to change.
pub fn limits_of(service: &Service) -> Option<Limits> {
    match service {
        Service::Echo(a) => Some(a.limits.to_limits()),
        Service::Time(a) => Some(a.limits.to_limits()),
        Service::Files(a) => Some(a.limits.to_limits()),
        Service::Chat(a) => Some(chat::flag_limits(a)),
        Service::Exec(_) | Service::Relay(_) => None,
    }
}

/// The handshake caps `service`'s flags ask for; echo and time have no handshake.
pub fn caps_of(service: &Service) -> Option<Caps> {
    match service {
        Service::Exec(a) => Some(a.preauth.caps()),
        Service::Files(a) => Some(a.preauth.caps()),
        Service::Chat(a) => Some(a.preauth.caps()),
        Service::Echo(_) | Service::Time(_) | Service::Relay(_) => None,
    }
}

/// `service` with connection limits and handshake caps that follow the returned senders.
fn with_live_limits(mut service: Service) -> (Service, super::reload::Live) {
    let mut senders = super::reload::Live::default();
    if let Some(limits) = limits_of(&service) {
        let (tx, live) = LiveLimits::channel(limits);
        senders.limits = Some(tx);
        match &mut service {
            Service::Echo(a) => a.limits.live = Some(live),
            Service::Time(a) => a.limits.live = Some(live),
            Service::Files(a) => a.limits.live = Some(live),
            Service::Chat(a) => a.live_limits = Some(live),
            Service::Exec(_) | Service::Relay(_) => {}
        }
    }
    if let Some(caps) = caps_of(&service) {
        let (tx, live) = watch::channel(caps);
        senders.caps = Some(tx);
        match &mut service {
            Service::Exec(a) => a.preauth.live = Some(live),
            Service::Files(a) => a.preauth.live = Some(live),
            Service::Chat(a) => a.preauth.live = Some(live),
            Service::Echo(_) | Service::Time(_) | Service::Relay(_) => {}
        }
    }
    (service, senders)
}

fn start(service: Service, token: CancellationToken) -> Running {
    match service {
        Service::Echo(a) => Box::pin(echo::run(a, token)),
        Service::Time(a) => Box::pin(time::serve(a, token)),
        Service::Exec(a) => Box::pin(exec::serve(a, token)),
        Service::Files(a) => Box::pin(files::run(a, token)),
        Service::Chat(a) => Box::pin(chat::run(a, token)),
        Service::Relay(a) => Box::pin(crate::serve::relay::serve_relay(a, token)),
    }
}
