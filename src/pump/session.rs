//! One log line per relayed connection, written when it ends however it ends: normally,
//! with an error, refused before relaying (the target down, a failed handshake), or dropped
//! by the server framework (idle timeout, the shutdown deadline), since the line is written
//! when the [`Session`] drops.
use std::fmt::Display;

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Broken, Method, Totals};

/// A relayed connection's record: who, where to, bytes each way, how it ended.
#[derive(Debug)]
pub struct Session {
    service: &'static str,
    peer: String,
    target: String,
    started: Instant,
    /// The bytes relayed so far, which [`super::relay`] counts into.
    pub totals: Totals,
    method: Option<Method>,
    /// How it ended, and whether that is worth a warning.
    end: Option<(String, bool)>,
}

impl Session {
    /// Starts the record of a connection from `peer` to `target` on `service`.
    pub fn new(service: &'static str, peer: impl Display, target: impl Display) -> Session {
        Session {
            service,
            peer: peer.to_string(),
            target: target.to_string(),
            started: Instant::now(),
            totals: Totals::default(),
            method: None,
            end: None,
        }
    }

    /// Records how the relay ended.
    pub fn relayed(&mut self, res: Result<Method, Broken>) {
        match res {
            Ok(m) => {
                self.method = Some(m);
                let end = match self
                    .totals
                    .unclean
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    true => "closed (a TLS side without close_notify)",
                    false => "closed",
                };
                self.end = Some((end.into(), false));
            }
            Err(e) => self.end = Some((e.to_string(), false)),
        }
    }

    /// Records an ordinary end other than a relay's (a UDP session gone quiet).
    pub fn ended(&mut self, why: impl Display) {
        self.end = Some((why.to_string(), false));
    }

    /// Records that the connection was not relayed, and why (the target could not be
    /// reached, a handshake failed): a warning.
    pub fn refused(&mut self, why: impl Display) {
        self.end = Some((why.to_string(), true));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (up, down) = self.totals.get();
        let secs = format!("{:.3}", self.started.elapsed().as_secs_f64());
        let via = self.method.map_or("-", Method::as_str);
        let (end, warning) = self
            .end
            .take()
            .unwrap_or(("cut: idle timeout or shutdown".into(), false));
        let (service, peer, target) = (self.service, &self.peer, &self.target);
        if warning {
            warn!(service, %peer, %target, up, down, secs, end, "not relayed");
        } else {
            info!(service, %peer, %target, up, down, secs, via, end, "relayed");
        }
    }
}
