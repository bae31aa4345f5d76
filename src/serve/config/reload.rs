//! SIGHUP: read the file again and apply what can change without dropping a connection —
//! the connection limits (for connections accepted from now on), the handshake limits (for
//! handshakes that start from now on) and the log level — and say,
//! in one line, what needs a restart (addresses, keys, which services run). A file that no
//! longer reads keeps the configuration in force. Authorized keys files are re-read by their
//! services' own SIGHUP handlers ([`crate::secure::Authorized::reload_on_sighup`]).
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Config, LIVE_KEYS, SERVICES};
use crate::server::{Caps, Limits};

/// What changes a running service's live limits.
#[derive(Debug, Default)]
pub struct Senders {
    /// Its connection limits, if it has any (not exec).
    pub limits: Option<watch::Sender<Limits>>,
    /// Its handshake caps, if it has a handshake (not echo, time).
    pub caps: Option<watch::Sender<Caps>>,
}

impl Senders {
    /// Whether `key` of [`LIVE_KEYS`] is live for this service.
    fn takes(&self, key: &str) -> bool {
        match key {
            "max-conns" | "idle-timeout" | "grace" => self.limits.is_some(),
            "max-handshakes" | "max-handshakes-per-addr" | "handshake-timeout" => {
                self.caps.is_some()
            }
            _ => false,
        }
    }
}

/// Each running service's live limits, by service name.
pub type LiveSenders = BTreeMap<&'static str, Senders>;

/// Re-reads `running.path` on every SIGHUP for as long as the process runs.
pub fn on_sighup(running: Config, live: LiveSenders) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        let mut running = running;
        while hup.recv().await.is_some() {
            reload(&mut running, &live);
        }
    });
    Ok(())
}

/// What one reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Changes now in force, `[echo] max-conns` or `log-level`.
    pub applied: Vec<String>,
    /// Changes that need a restart.
    pub not_applied: Vec<String>,
}

/// Reads the file again, applies what can change and logs what it did; `running` becomes
/// the configuration in force (with the changes not applied left out, so they are reported
/// again at the next reload).
pub fn reload(running: &mut Config, live: &LiveSenders) -> Option<Outcome> {
    let new = match Config::load(&running.path, &running.overrides) {
        Ok(c) => c,
        Err(e) => {
            warn!("kept the configuration in force: {e:#}");
            return None;
        }
    };
    let mut out = Outcome::default();
    if new.log_level != running.log_level {
        let level = new.log_level.as_deref().unwrap_or("info");
        if std::env::var_os("RUST_LOG").is_some() {
            out.not_applied.push("log-level (RUST_LOG is set)".into());
        } else {
            match crate::log::level::set(level) {
                Ok(()) => {
                    out.applied.push(format!("log-level = {level}"));
                    running.log_level = new.log_level.clone();
                }
                Err(e) => out.not_applied.push(format!("log-level ({e:#})")),
            }
        }
    }
    if new.metrics != running.metrics {
        out.not_applied.push("metrics".into());
    }
    if !super::forward::same(&new.forwards, &running.forwards) {
        out.not_applied.push("[[forward]] tables".into());
    }
    for name in SERVICES {
        let (old, now) = (running.section(name).cloned(), new.section(name));
        let (old, now) = match (old, now) {
            (None, None) => continue,
            (None, Some(_)) => {
                out.not_applied.push(format!("[{name}] added"));
                continue;
            }
            (Some(_), None) => {
                out.not_applied.push(format!("[{name}] removed"));
                continue;
            }
            (Some(old), Some(now)) => (old, now),
        };
        let keys: BTreeSet<&String> = old.keys.keys().chain(now.keys.keys()).collect();
        let mut limits_changed = false;
        for key in keys {
            let setting = |s: &super::Section| s.keys.get(key).map(|e| e.setting.clone());
            if setting(&old) == setting(now) {
                continue;
            }
            if live.get(name).is_some_and(|l| l.takes(key)) {
                limits_changed = true;
                let value = match now.keys.get(key).map(|e| &e.setting) {
                    Some(super::Setting::Values(v)) => v.join(" "),
                    _ => "its default".into(),
                };
                out.applied.push(format!("[{name}] {key} = {value}"));
            } else {
                out.not_applied.push(format!("[{name}] {key}"));
            }
        }
        if limits_changed {
            apply_limits(running, now, live);
        }
    }
    if out.applied.is_empty() && out.not_applied.is_empty() {
        info!("re-read {}: nothing changed", running.path.display());
    } else if !out.applied.is_empty() {
        info!(
            "re-read {}: applied {}",
            running.path.display(),
            out.applied.join(", ")
        );
    }
    if !out.not_applied.is_empty() {
        warn!(
            "re-read {}: not applied: {} (restart to change)",
            running.path.display(),
            out.not_applied.join(", ")
        );
    }
    Some(out)
}

/// Sends the limits of `now` to its running service and records them in `running`.
fn apply_limits(running: &mut Config, now: &super::Section, live: &LiveSenders) {
    // `now` passed the same check when the file was loaded; it cannot fail here.
    let (Ok(service), Some(live)) = (now.service(&running.path), live.get(now.name)) else {
        return;
    };
    if let (Some(tx), Some(limits)) = (&live.limits, service.limits()) {
        tx.send_replace(limits);
    }
    if let (Some(tx), Some(caps)) = (&live.caps, service.caps()) {
        tx.send_replace(caps);
    }
    if let Some(section) = running.sections.iter_mut().find(|s| s.name == now.name) {
        for key in LIVE_KEYS.into_iter().filter(|k| live.takes(k)) {
            match now.keys.get(key) {
                Some(entry) => section.keys.insert(key.to_string(), entry.clone()),
                None => section.keys.remove(key),
            };
        }
    }
}
